import type { MessagePort } from 'node:worker_threads';
import type { CommandSpec } from './spec.js';

/**
 * What crosses the thread boundary. A task goes main → worker through the
 * pool; its outcome comes back as the task's value, buffers transferred.
 */

export interface RunTask {
  readonly spec: CommandSpec;
  /** The child's environment as K=V, resolved on the main thread at run(); or as NUL-ended entries in one block. */
  readonly env: readonly string[] | Uint8Array;
  /** The main thread's PATH at run(): bare names resolve on it. */
  readonly searchPath: string | undefined;
  /** The main thread's cwd at run(), for relative binary paths. */
  readonly parentCwd: string;
  readonly timeoutMs: number | undefined;
  readonly killSignal: number;
  readonly killGraceMs: number;
  /** Control channel (abort, spawn notification); only when a caller needs it. */
  readonly port: MessagePort | undefined;
  /** performance.timeOrigin + now() on the main thread when posted. */
  readonly postedAt: number;
}

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
