// The spawnpool CLI as a real process, on the engine under test.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE, tmpBase } from './_support.js';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** The subcommand's arguments, on the engine under test. */
export function withEngine(args) {
  return args[0] === 'run' || args[0] === 'bench' ? [args[0], '--engine', ENGINE, ...args.slice(1)] : args;
}

/** Runs the CLI to its end: { status, stdout, stderr }. */
export const cli = (args, opts = {}) => spawnSync(process.execPath, [CLI, ...withEngine(args)], { encoding: 'utf8', timeout: 60_000, ...opts });

/** Starts the CLI; `opts` as for child_process.spawn. */
export const start = (args, opts = {}) => spawn(process.execPath, [CLI, ...withEngine(args)], opts);

export const jsonLines = (path) => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
export const dir = () => mkdtempSync(join(tmpBase, 'cli-'));

export async function until(condition) {
  while (!condition()) await new Promise((r) => setTimeout(r, 10));
}

export function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}
