#!/usr/bin/env node
import { createReadStream, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { runBatch } from './batch.js';
import { runBench } from './bench.js';
import type { EngineName } from '../main/engine-choice.js';

const USAGE = `usage:
  spawnpool run [FILE|-] [-j N] [--timeout MS] [--retries N] [--joblog FILE] [--resume]
                [--results FILE] [--capture] [--halt-on-fail] [--engine native|node]
      Runs a batch: each line a job, a JSON array (argv) or an object
      { id?, argv, env?, cwd?, input?, timeoutMs? }. Blank and # lines are skipped.
  spawnpool bench [-n N] [-c CONCURRENCY] [--ballast MB] [--compare] [--engine native|node]
                  [-- CMD ARGS]
      A spawn storm (default /bin/true): spawns/s, latency, main-loop delay.
  spawnpool --version | --help`;

class UsageError extends Error {}

function count(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${value}`);
  return n;
}

function engine(value: string | undefined): EngineName | undefined {
  if (value === undefined || value === 'native' || value === 'node') return value;
  throw new UsageError(`--engine must be native or node, got ${value}`);
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      jobs: { type: 'string', short: 'j' },
      timeout: { type: 'string' },
      retries: { type: 'string' },
      joblog: { type: 'string' },
      resume: { type: 'boolean', default: false },
      results: { type: 'string' },
      capture: { type: 'boolean', default: false },
      'halt-on-fail': { type: 'boolean', default: false },
      engine: { type: 'string' },
    },
  });
  if (positionals.length > 1) throw new UsageError(`one input file at most, got ${positionals.join(' ')}`);
  if (values.resume && values.joblog === undefined) throw new UsageError('--resume needs --joblog');
  const file = positionals[0] ?? '-';
  const input = file === '-' ? process.stdin : createReadStream(file);
  // Open errors (no such file) surface here, as a message, not a stack.
  if (file !== '-') await new Promise<void>((resolve, reject) => input.once('open', () => resolve()).once('error', reject));
  return runBatch({
    input,
    inputPath: file === '-' ? undefined : file,
    jobs: count('-j', values.jobs, availableParallelism()),
    timeoutMs: values.timeout === undefined ? undefined : count('--timeout', values.timeout, 0, 1),
    retries: count('--retries', values.retries, 0, 0),
    joblog: values.joblog,
    resume: values.resume,
    results: values.results,
    capture: values.capture,
    haltOnFail: values['halt-on-fail'],
    engine: engine(values.engine),
    stderr: process.stderr,
  });
}

async function benchCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      runs: { type: 'string', short: 'n' },
      concurrency: { type: 'string', short: 'c' },
      ballast: { type: 'string' },
      compare: { type: 'boolean', default: false },
      engine: { type: 'string' },
    },
  });
  const reports = await runBench({
    runs: count('-n', values.runs, 5000),
    concurrency: count('-c', values.concurrency, 64),
    ballastMb: count('--ballast', values.ballast, 0, 0),
    compare: values.compare,
    argv: positionals.length > 0 ? positionals : ['/bin/true'],
    engine: engine(values.engine),
    out: process.stdout,
  });
  return reports.every((r) => r.failed === 0) ? 0 : 1;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run': return await runCommand(rest);
      case 'bench': return await benchCommand(rest);
      case '--version': case '-V':
        console.log(version());
        return 0;
      case '--help': case '-h': case 'help':
        console.log(USAGE);
        return 0;
      default:
        throw new UsageError(command === undefined ? 'a command is needed' : `unknown command ${command}`);
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`spawnpool: ${e.message}\n${USAGE}`);
      return 2;
    }
    if (e.syscall !== undefined) {
      console.error(`spawnpool: ${e.message}`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
