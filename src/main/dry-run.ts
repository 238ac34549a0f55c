import { AsyncLocalStorage } from 'node:async_hooks';
import type { RunOutcome } from '../shared/protocol.js';
import type { CommandSpec } from '../shared/spec.js';
import { encodeExit } from '../shared/status.js';
import { CommandError } from '../shared/errors.js';

export interface DryRunRequest {
  /** argv[0] is the binary as given. */
  readonly argv: readonly string[];
  /** The environment the child would get. */
  readonly env: Readonly<Record<string, string>>;
  /** What would be fed to stdin (inputBuffer), as UTF-8 text. */
  readonly input: string | undefined;
  readonly commandLine: string;
}

export interface DryRunReply {
  status?: number;
  stdout?: string | Uint8Array;
  stderr?: string | Uint8Array;
}

export type DryRunHandler = (request: DryRunRequest) => DryRunReply | void | Promise<DryRunReply | void>;

export interface DryRunReport<T> {
  readonly value: T;
  /** `toString()` of every command run inside, in order. */
  readonly commands: string[];
}

interface Scope {
  readonly handler: DryRunHandler;
  readonly commands: string[];
}

const scope = new AsyncLocalStorage<Scope>();

function bytes(data: string | Uint8Array | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

function envRecord(spec: CommandSpec): Record<string, string> {
  if (spec.env) return Object.fromEntries(spec.env);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v;
  return out;
}

class DryRun {
  constructor(private readonly s: Scope) {}

  /** Asks the handler instead of spawning; the reply becomes a worker-like outcome. */
  async execute(spec: CommandSpec, command: string): Promise<RunOutcome> {
    this.s.commands.push(command);
    const input = spec.stdin.kind === 'buffer' ? Buffer.from(spec.stdin.data).toString('utf8') : undefined;
    const reply = (await this.s.handler({ argv: [spec.binary, ...spec.args], env: envRecord(spec), input, commandLine: command })) ?? {};
    const status = reply.status ?? 0;
    const combined = spec.stdout.kind === 'combined';
    const out = bytes(reply.stdout);
    const err = bytes(reply.stderr);
    return {
      pid: 0,
      rawStatus: encodeExit(status),
      failure: undefined,
      stdout: combined ? undefined : out,
      stderr: err,
      output: combined ? Buffer.concat([out, err]) : undefined,
      stderrTail: err,
      durationMs: 0,
      queueWaitMs: 0,
      spawnMs: 0,
    };
  }
}

/** The dry run the current async context is inside, if any. */
export function activeDryRun(): DryRun | undefined {
  const s = scope.getStore();
  return s && new DryRun(s);
}

/**
 * Runs `fn` with command execution replaced by `handler`, for the async
 * context of `fn` only: concurrent callers outside do not see it.
 */
export async function withDryRun<T>(handler: DryRunHandler, fn: () => T | Promise<T>): Promise<DryRunReport<T>> {
  if (typeof handler !== 'function' || typeof fn !== 'function') {
    throw new CommandError('EINVAL', 'withDryRun(): handler and fn must be functions', { command: '' });
  }
  const s: Scope = { handler, commands: [] };
  const value = await scope.run(s, fn);
  return { value, commands: s.commands };
}
