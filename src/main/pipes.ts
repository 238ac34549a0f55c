import { Readable, Writable } from 'node:stream';
import type { MessagePort } from 'node:worker_threads';
import { FRAME, STREAM_WINDOW, isFrame, postFrame, type Frame } from '../shared/stream-frames.js';
import type { CommandSpec } from '../shared/spec.js';

/**
 * Child output as a Readable on the main thread. The worker sends at most
 * STREAM_WINDOW bytes ahead of what this side has acknowledged; bytes are
 * acknowledged once the Readable's buffer takes them without going over its
 * high-water mark, or when the consumer next asks for more. A consumer that
 * stops reading thus stops the worker reading, and the child blocks on write.
 */
class PipeReadable extends Readable {
  #unacked = 0;

  constructor(private readonly credit: (bytes: number) => void) {
    super({ highWaterMark: 64 * 1024 });
  }

  deliver(chunk: Uint8Array): void {
    this.#unacked += chunk.byteLength;
    if (this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) this.#ack();
  }

  override _read(): void {
    this.#ack();
  }

  #ack(): void {
    if (this.#unacked === 0 || this.destroyed) return;
    this.credit(this.#unacked);
    this.#unacked = 0;
  }
}

/**
 * The child's stdin as a Writable. A write completes while less than
 * STREAM_WINDOW bytes are unacknowledged by the worker; past that, it waits.
 * When the child closes its stdin, the stream is destroyed without error
 * (the child's right, as with inputBuffer).
 */
class PipeWritable extends Writable {
  #inFlight = 0;
  #blocked: (() => void) | undefined;
  #closed = false;

  constructor(private readonly send: (frame: Frame) => void) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#closed) return callback();
    this.send({ [FRAME]: 'stdin', chunk });
    this.#inFlight += chunk.byteLength;
    if (this.#inFlight < STREAM_WINDOW) callback();
    else this.#blocked = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#closed) this.send({ [FRAME]: 'stdin-end' });
    this.#closed = true;
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#closed) this.send({ [FRAME]: 'stdin-end' });
    this.#closed = true;
    this.#release();
    callback(error);
  }

  acknowledged(bytes: number): void {
    this.#inFlight -= bytes;
    if (this.#inFlight < STREAM_WINDOW) this.#release();
  }

  childClosed(): void {
    this.#closed = true;
    this.#release();
    this.destroy();
  }

  #release(): void {
    const blocked = this.#blocked;
    this.#blocked = undefined;
    blocked?.();
  }
}

export interface Pipes {
  readonly stdin: Writable | undefined;
  readonly stdout: Readable | undefined;
  readonly stderr: Readable | undefined;
  /** Resolves once every output stream has had all its bytes delivered (or was cut off). */
  readonly ended: Promise<void>;
}

/** The main thread's ends of a run's pipes, on its control port; undefined when it has none. */
export function attachPipes(spec: CommandSpec, port: MessagePort): Pipes | undefined {
  const wants = [spec.stdin.kind === 'pipe', spec.stdout.kind === 'pipe', spec.stderr.kind === 'pipe'];
  if (!wants.some(Boolean)) return undefined;
  const send = (frame: Frame) => {
    try {
      postFrame(port, frame);
    } catch {
      // The port is closed: the run is over, nothing is listening.
    }
  };
  const stdin = wants[0] ? new PipeWritable(send) : undefined;
  const outputs = new Map<1 | 2, PipeReadable>();
  for (const fd of [1, 2] as const) {
    if (wants[fd]) outputs.set(fd, new PipeReadable((bytes) => send({ [FRAME]: 'credit', fd, bytes })));
  }
  // wait() waits for delivery (every byte pushed, then EOF), not for the consumer.
  let resolveEnded!: () => void;
  const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
  const open = new Set(outputs.keys());
  const close = (fd: 1 | 2) => {
    if (!open.delete(fd)) return;
    outputs.get(fd)!.push(null);
    if (open.size === 0) resolveEnded();
  };
  if (open.size === 0) resolveEnded();

  port.on('message', (data: unknown) => {
    if (!isFrame(data)) return;
    switch (data[FRAME]) {
      case 'data': outputs.get(data.fd)?.deliver(data.chunk); break;
      case 'end': close(data.fd); break;
      case 'stdin-ack': stdin?.acknowledged(data.bytes); break;
      case 'stdin-closed': stdin?.childClosed(); break;
    }
  });
  port.once('close', () => {
    // The worker went away: whatever was not delivered will not be.
    for (const fd of open) {
      open.delete(fd);
      outputs.get(fd)!.destroy(new Error('the worker ended before the stream did'));
    }
    resolveEnded();
    stdin?.childClosed();
  });
  return { stdin, stdout: outputs.get(1), stderr: outputs.get(2), ended };
}
