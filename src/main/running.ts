import type { Readable, Writable } from 'node:stream';
import { CommandError } from '../shared/errors.js';
import { readLines } from './lines.js';
import { signalNumber } from '../shared/status.js';
import type { AnyCapture, RunResult } from './result.js';

export interface WaitOptions {
  /** Resolve on any normal exit, with `result.status`; see run(). */
  status?: boolean;
}

/** How a RunningCommand reaches its run; the dry-run and pool paths each provide one. */
export interface RunHandle {
  readonly pid: number;
  readonly stdin?: Writable | undefined;
  readonly stdout?: Readable | undefined;
  readonly stderr?: Readable | undefined;
  /** Settles like run() once the child is reaped. */
  finish(wantStatus: boolean): Promise<RunResult>;
  /** Ends the child; resolves once it is reaped. */
  abort(signal: number | undefined): Promise<void>;
  /** requireHandshake(): resolves once the child waits just before exec. */
  handshakeWait(): Promise<void>;
  /** requireHandshake(): lets the child exec. */
  handshakeNotify(): Promise<void>;
}

/**
 * A child that is running. `wait()` settles like run(); `abort()` sends the
 * kill signal, SIGKILL after the grace period, and resolves once the child is
 * reaped. Disposing it (`await using`) aborts it if it still runs.
 */
export class RunningCommand<Out extends AnyCapture = AnyCapture, Err extends AnyCapture = AnyCapture, Combined extends AnyCapture = AnyCapture> implements AsyncDisposable {
  readonly pid: number;
  /** With `.inputPipe()`: the child's stdin. End it to send EOF. */
  readonly stdin: Writable | undefined;
  /** With `.outputPipe()`: the child's stdout; not reading it stops the child. */
  readonly stdout: Readable | undefined;
  /** With `.errorPipe()`: the child's stderr, likewise. */
  readonly stderr: Readable | undefined;
  readonly #handle: RunHandle;
  readonly #defaultStatus: boolean;

  /** @internal */
  constructor(handle: RunHandle, defaultStatus: boolean) {
    this.pid = handle.pid;
    this.stdin = handle.stdin;
    this.stdout = handle.stdout;
    this.stderr = handle.stderr;
    this.#handle = handle;
    this.#defaultStatus = defaultStatus;
  }

  wait(opts: WaitOptions = {}): Promise<RunResult<Out, Err, Combined>> {
    return this.#handle.finish(opts.status ?? this.#defaultStatus) as Promise<RunResult<Out, Err, Combined>>;
  }

  /**
   * The lines of a piped stdout (or stderr), without their newline, read as
   * they are consumed: a slow loop body holds the child back.
   */
  async *lines(stream: 'stdout' | 'stderr' = 'stdout'): AsyncGenerator<string, void, undefined> {
    const source = stream === 'stdout' ? this.stdout : this.stderr;
    if (source === undefined) {
      throw new CommandError('EINVAL', `lines(): ${stream} is not a pipe; use .${stream === 'stdout' ? 'outputPipe' : 'errorPipe'}()`, { command: '' });
    }
    for await (const line of readLines(source)) yield line.text;
  }

  /**
   * With `.requireHandshake()`: resolves once the child has applied every
   * attribute and waits just before exec; rejects if it failed or ended first.
   */
  handshakeWait(): Promise<void> {
    return this.#handle.handshakeWait();
  }

  /** With `.requireHandshake()`: lets the waiting child exec. */
  handshakeNotify(): Promise<void> {
    return this.#handle.handshakeNotify();
  }

  async abort(signal?: NodeJS.Signals | number): Promise<void> {
    return this.#handle.abort(signal === undefined ? undefined : checkSignal(signal, 'abort()'));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.abort();
    // The outcome (EABORTED, or how it ended before) is the caller's to ask for.
    await this.#handle.finish(true).catch(() => undefined);
  }
}


export function checkSignal(signal: unknown, where: string): number {
  const num = signalNumber(signal as NodeJS.Signals | number);
  if (num === undefined) throw new CommandError('EINVAL', `${where}: unknown signal ${String(signal)}`, { command: '' });
  return num;
}
