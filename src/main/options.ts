import { CommandError } from '../shared/errors.js';
import { checkSignal } from './running.js';
import { SpawnPool } from './pool.js';

export interface RunOptions {
  /** The pool to run on; default: a shared pool made on first use. */
  pool?: SpawnPool;
  /** Resolve on any normal exit, with `result.status` (virCommandRun's exitstatus). */
  status?: boolean;
  /** End the child (killSignal, then SIGKILL) after this long: ETIMEDOUT. */
  timeoutMs?: number;
  /** Aborting it ends the child like abort(): EABORTED. */
  signal?: AbortSignal;
  /** Default 'SIGTERM'. */
  killSignal?: NodeJS.Signals | number;
  /** How long after killSignal SIGKILL follows; default 2000. */
  killGraceMs?: number;
}

export interface CheckedOptions {
  readonly pool: SpawnPool | undefined;
  readonly status: boolean;
  readonly timeoutMs: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly killSignal: number;
  readonly killGraceMs: number;
}

function invalid(problem: string, command: () => string): CommandError {
  return new CommandError('EINVAL', `run(): ${problem}`, { command: command() });
}

function checkMs(name: string, value: unknown, command: () => string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 0x7fffffff) {
    throw invalid(`${name} must be a number of milliseconds from 0 to 2^31-1, got ${String(value)}`, command);
  }
  return value;
}

const NO_OPTIONS: CheckedOptions = { pool: undefined, status: false, timeoutMs: undefined, signal: undefined, killSignal: 15, killGraceMs: 2000 };

export function checkOptions(opts: RunOptions | undefined, command: () => string): CheckedOptions {
  if (opts === undefined) return NO_OPTIONS;
  if (opts === null || typeof opts !== 'object') throw invalid('options must be an object', command);
  if (opts.pool !== undefined && !(opts.pool instanceof SpawnPool)) throw invalid('pool must be a SpawnPool', command);
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw invalid('signal must be an AbortSignal', command);
  return {
    pool: opts.pool,
    status: Boolean(opts.status),
    timeoutMs: checkMs('timeoutMs', opts.timeoutMs, command),
    signal: opts.signal,
    killSignal: opts.killSignal === undefined ? 15 : checkSignal(opts.killSignal, 'run(): killSignal'),
    killGraceMs: checkMs('killGraceMs', opts.killGraceMs, command) ?? 2000,
  };
}
