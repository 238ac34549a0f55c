import type { Readable, Writable } from 'node:stream';
import { FRAME, STREAM_WINDOW, type Frame } from '../shared/stream-frames.js';
import { settled } from './capture.js';

type Send = (frame: Frame) => void;

/**
 * A child's stdout or stderr forwarded to the main thread over the run's
 * port. At most STREAM_WINDOW bytes travel unacknowledged; past that the
 * pipe is not read, so a consumer that stalls stalls the child, and neither
 * thread buffers more than the window.
 */
export class OutputForwarder {
  readonly done: Promise<void>;
  #inFlight = 0;

  constructor(private readonly stream: Readable, send: Send, fd: 1 | 2) {
    stream.on('data', (chunk: Buffer) => {
      send({ [FRAME]: 'data', fd, chunk });
      this.#inFlight += chunk.byteLength;
      if (this.#inFlight >= STREAM_WINDOW) stream.pause();
    });
    this.done = settled(stream).then(() => send({ [FRAME]: 'end', fd }));
  }

  credit(bytes: number): void {
    this.#inFlight -= bytes;
    if (this.#inFlight < STREAM_WINDOW && this.stream.isPaused()) this.stream.resume();
  }

  abandon(): void {
    this.stream.destroy();
  }
}

/**
 * The child's stdin, fed from the main thread's Writable. Each chunk is
 * acknowledged once written to the pipe, which is what lets the main side
 * send more. The child closing stdin ends it quietly.
 */
export class StdinSink {
  #closed = false;

  constructor(private readonly stdin: Writable, private readonly send: Send) {
    // EPIPE: the child closed its end, which is its right.
    stdin.on('error', () => this.#close());
    stdin.once('close', () => this.#close());
  }

  write(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.stdin.write(chunk, (err) => {
      if (!err) this.send({ [FRAME]: 'stdin-ack', bytes: chunk.byteLength });
    });
  }

  end(): void {
    if (!this.#closed) this.stdin.end();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.send({ [FRAME]: 'stdin-closed' });
  }
}
