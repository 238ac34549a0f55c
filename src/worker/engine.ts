import type { Readable, Writable } from 'node:stream';
import type { ProcessAttributes, SessionMode } from '../shared/spec.js';
import type { WireFailure } from '../shared/protocol.js';

/**
 * The seam between what a run needs and how a child is started. The rest of
 * the worker (feeding, capture, timeouts, reaping order) is engine-agnostic.
 */

/** What the child gets at fd 0, 1 or 2. */
export type StdioPlan =
  | 'null'            // /dev/null
  | 'pipe'            // a pipe whose other end the worker holds
  | 'stdout'          // (fd 2 only) the same pipe as fd 1, for combined capture
  | { fd: number };   // a parent fd, dup'ed to this number

export interface SpawnPlan {
  /** Absolute path of the program. */
  readonly file: string;
  /** argv[0] as the caller gave it, then the arguments. */
  readonly argv: readonly string[];
  /** Exactly the child's environment, K=V; or those entries each ended by a NUL, in one block. */
  readonly env: readonly string[] | Uint8Array;
  readonly cwd: string | undefined;
  readonly stdio: readonly [StdioPlan, StdioPlan, StdioPlan];
  /** Parent fds the child keeps at the same number; every other fd is closed. */
  readonly keepFds: readonly number[];
  /** The child's ends of send-buffer pipes go to these numbers (none of them a keepFd). */
  readonly sendFds: readonly number[];
  /**
   * Sent to the child when the thread that spawned it ends (PR_SET_PDEATHSIG):
   * a host that dies, even by SIGKILL, takes its children with it. The
   * native engine applies it; child_process cannot.
   */
  readonly parentDeathSignal: number | undefined;
  /** A process group (or session) of its own; then kill() signals the whole group. */
  readonly session: SessionMode;
  /** umask, rlimits, caps, credentials, prctl options, daemon, handshake (parentDeathSignal above is the one to apply). */
  readonly attrs: ProcessAttributes;
}

export interface SpawnedChild {
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** The worker's ends of the send-buffer pipes, in the order of SpawnPlan.sendFds. */
  readonly sendPipes: readonly Writable[];
  /** Sends a signal (to its group, if it leads one); false when the child is already reaped. */
  kill(signal: number): boolean;
  /** Resolves with the raw wait status once the child is reaped. */
  readonly exited: Promise<number>;
  /** When the exec helper was started (daemonize, handshake): what it reports. */
  readonly helper?: HelperChannel | undefined;
}

/** The exec helper's reports, and the worker's half of the handshake. */
export interface HelperChannel {
  /** The child waits for handshakeNotify(); or why it never will. */
  readonly ready: Promise<WireFailure | undefined>;
  /** Lets the child go on to exec. */
  notify(): void;
  /** Once the helper has nothing more to say (the target exec'd, or a step failed): a failure, the daemon's pid. */
  readonly done: Promise<{ failure: WireFailure | undefined; daemonPid: number | undefined }>;
  /** The run is being cut short: stop listening. */
  abandon(): void;
}

/** Children never outlive the host: SIGKILL when the spawning worker thread (and so the host) is gone. */
export const CHILD_DEATH_SIGNAL = 9;

/** No fds: one shared empty list for the plans and flags of most runs. */
export const NO_FDS: readonly number[] = Object.freeze([]);

/** A spawn that failed before the program ran, with the errno name. */
export class SpawnFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** What the addon carries out itself for a run that needs no JS stream. */
export interface FastIo {
  /** Fed to stdin (which is then a pipe). */
  readonly input: Uint8Array | undefined;
  /** The send buffers, in the order of SpawnPlan.sendFds. */
  readonly sendData: readonly Uint8Array[];
  /** stdout (or the combined pipe) into a buffer; stderr into a buffer; stderr's tail only. */
  readonly captureOut: boolean;
  readonly captureErr: boolean;
  readonly tailErr: boolean;
  readonly maxBuffer: number;
}

/** How a fast-path run ended. */
export interface FastRecord {
  /** Raw wait status; -1: lost (SIGCHLD ignored, or someone else reaped it). */
  readonly rawStatus: number;
  /** A capture went past maxBuffer: the child was SIGKILLed, the first maxBuffer bytes kept. */
  readonly overflowed: boolean;
  readonly stdout: Uint8Array | undefined;
  readonly stderr: Uint8Array | undefined;
  readonly stderrTail: Uint8Array | undefined;
}

export interface FastChild {
  readonly pid: number;
  /** Sends a signal (to its group, if it leads one); from then on the run does not wait for EOF. */
  kill(signal: number): boolean;
}

/**
 * A plain run's child (plain-runs.ts): the engine sets its pid and its own
 * id at the spawn, and calls exited() once it is reaped and stderr drained.
 */
export interface PlainChild {
  pid: number;
  engineId: number;
  exited(rawStatus: number, stderrTail: Uint8Array | undefined): void;
}

export interface Engine {
  readonly name: 'native' | 'node';
  /** Rejects with SpawnFailure when the program could not be started. */
  spawn(plan: SpawnPlan): Promise<SpawnedChild>;
  /**
   * The same, with feeding, capture and reaping done in C; absent where the
   * engine has no such path. Throws SpawnFailure; `done` is called once the
   * child is reaped and its pipes drained (or abandoned, once killed),
   * always from the loop, never from inside this call.
   */
  spawnFast?(plan: SpawnPlan, io: FastIo, done: (record: FastRecord) => void): FastChild;
  /**
   * spawnFast() for a run that sets nothing but its program, arguments and
   * environment (every other field its default: /dev/null in and out,
   * stderr's tail kept, the death signal), without the plan, flags and
   * closure built per run. Throws SpawnFailure.
   */
  spawnPlain?(file: string, argv: readonly string[], env: readonly string[] | Uint8Array, child: PlainChild): void;
  /** false once the child is reaped. */
  killPlain?(child: PlainChild, signal: number): boolean;
}

/** Signals a process group; false when it has no member left. */
export function killGroup(pgid: number, signal: number): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
