import type { MessagePort } from 'node:worker_threads';
import type { CommandSpec } from './spec.js';
import type { WireTask } from './wire.js';

/**
 * What crosses the thread boundary. Each worker has one lane: a port on
 * which the runs of one turn of the main loop arrive as one message, and on
 * which the outcomes of one turn of the worker's loop go back as one
 * message, their bytes transferred.
 */

/** The child's environment when it inherits: the block the lane sent last (the main thread's environ did not change). */
export const SAME_ENV = 0;

export interface RunTask {
  /** The run's number on its lane, echoed in its outcome. */
  readonly id: number;
  readonly spec: CommandSpec;
  /**
   * The child's environment as K=V, resolved on the main thread at run(); or
   * as NUL-ended entries in one block; or SAME_ENV: the last block this lane carried.
   */
  readonly env: readonly string[] | Uint8Array | typeof SAME_ENV;
  /** The main thread's PATH at run(): bare names resolve on it. */
  readonly searchPath?: string | undefined;
  /** The main thread's cwd at run(), for relative binary paths. */
  readonly parentCwd: string;
  readonly timeoutMs?: number | undefined;
  readonly killSignal: number;
  readonly killGraceMs: number;
  /** Control channel (abort, spawn notification, streams): runAsync() only. */
  readonly port?: MessagePort | undefined;
  /** run() with an AbortSignal, or runAsync(): an abort may come on the lane. */
  readonly abortable?: boolean | undefined;
  /** runAsync() without a port: its pid goes back on the lane once it runs. */
  readonly notifySpawn?: boolean | undefined;
  /** performance.timeOrigin + now() on the main thread when posted. */
  readonly postedAt: number;
}

/** main → worker, on the lane. */
export type LaneRequest =
  | { readonly t: 'runs'; readonly runs: readonly WireTask[] }
  /** An abort (run()'s AbortSignal, a handle's abort()): killSignal (or `signal`) to that run's child, SIGKILL after the grace. */
  | { readonly t: 'abort'; readonly id: number; readonly signal: number | undefined }
  /** pool.destroy(): SIGKILL every child; later runs end without spawning. */
  | { readonly t: 'destroy' }
  /** At most `running` of this lane's runs at once; the rest wait in the worker. */
  | { readonly t: 'limit'; readonly running: number };

/** worker → main, on the lane. */
export type LaneReport =
  | {
    readonly t: 'done';
    readonly numbers: Float64Array;
    readonly extras: readonly (OutcomeExtras | 0)[];
    /** [id, pid, id, pid, ...]: runs that asked for their pid and now run. */
    readonly spawned: readonly number[];
  }
  /** The thread is dying: why, and which of its runs had a child (killed now). */
  | { readonly t: 'lost'; readonly reason: string; readonly withChild: readonly number[] };

/** How a worker hands the pool its lane (on parentPort, once, as it starts). */
export const LANE_KEY = 'spawnpoolLane';

/** Why a run ended without a plain exit. */
export interface WireFailure {
  readonly code: string;
  readonly message: string;
}

export interface RunOutcome {
  /** 0 when the child never started. */
  readonly pid: number;
  /** Raw wait status; undefined when the child never started. */
  readonly rawStatus: number | undefined;
  readonly failure: WireFailure | undefined;
  readonly stdout: Uint8Array | undefined;
  readonly stderr: Uint8Array | undefined;
  readonly output: Uint8Array | undefined;
  /** The last bytes of stderr, kept even when stderr was not captured. */
  readonly stderrTail: Uint8Array | undefined;
  /** daemonize(): the daemon's pid, as the exec helper reported it. */
  readonly daemonPid?: number | undefined;
  readonly durationMs: number;
  readonly queueWaitMs: number;
  readonly spawnMs: number;
}

/** What an outcome holds beyond its numbers; most runs have none of it. */
export type OutcomeExtras = Pick<RunOutcome, 'failure' | 'stdout' | 'stderr' | 'output' | 'stderrTail' | 'daemonPid'>;

/**
 * Outcomes cross as numbers, OUTCOME_FIELDS per run (its lane id, pid,
 * rawStatus or -1, durationMs, queueWaitMs, spawnMs), in one Float64Array
 * moved with the message, and an extras list (0 for a run with none): a
 * structured clone of one object per outcome cost the main thread more
 * than the rest of settling it.
 */
export const OUTCOME_FIELDS = 6;

export function packOutcome(numbers: number[], extras: (OutcomeExtras | 0)[], id: number, o: RunOutcome): void {
  numbers.push(id, o.pid, o.rawStatus ?? -1, o.durationMs, o.queueWaitMs, o.spawnMs);
  const plain = o.failure === undefined && o.stdout === undefined && o.stderr === undefined && o.output === undefined &&
    o.stderrTail === undefined && o.daemonPid === undefined;
  extras.push(plain ? 0 : {
    failure: o.failure, stdout: o.stdout, stderr: o.stderr, output: o.output, stderrTail: o.stderrTail, daemonPid: o.daemonPid,
  });
}

/** The i-th outcome of a 'done' report. */
export function unpackOutcome(numbers: Float64Array, extras: readonly (OutcomeExtras | 0)[], i: number): RunOutcome {
  const at = i * OUTCOME_FIELDS;
  const raw = numbers[at + 2]!;
  const x = extras[i] || undefined;
  return {
    pid: numbers[at + 1]!,
    rawStatus: raw < 0 ? undefined : raw,
    failure: x?.failure,
    stdout: x?.stdout,
    stderr: x?.stderr,
    output: x?.output,
    stderrTail: x?.stderrTail,
    daemonPid: x?.daemonPid,
    durationMs: numbers[at + 3]!,
    queueWaitMs: numbers[at + 4]!,
    spawnMs: numbers[at + 5]!,
  };
}

/** The outcome of a run that never had a child. */
export function unstarted(failure: WireFailure, durationMs = 0, queueWaitMs = 0): RunOutcome {
  return {
    pid: 0, rawStatus: undefined, failure,
    stdout: undefined, stderr: undefined, output: undefined, stderrTail: undefined,
    durationMs, queueWaitMs, spawnMs: 0,
  };
}

/** The control surface a worker exposes on a task's port. */
export interface ChildControl {
  /** The child's pid once spawned, or 0 if it could not be started. */
  spawned(): Promise<number>;
  /** killSignal (or `signal`), SIGKILL after killGraceMs; resolves once reaped. */
  abort(signal?: number): Promise<void>;
  /** Resolves once the child waits just before exec (undefined), or with why it never will. */
  handshakeWait(): Promise<WireFailure | undefined>;
  /** Lets the child exec. */
  handshakeNotify(): Promise<void>;
}
