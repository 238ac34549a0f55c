import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Resolves when a stream has ended, errored or been destroyed. */
export function settled(stream: Readable): Promise<void> {
  return finished(stream, { writable: false }).catch(() => undefined);
}

/** Concatenates into a buffer that owns its whole ArrayBuffer, so it can be transferred. */
function ownBytes(chunks: readonly Buffer[], size: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(size));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk.subarray(0, size - at), at);
    at += chunk.length;
    if (at >= size) break;
  }
  return out;
}

/**
 * Keeps what a child writes to one stream, up to `limit` bytes. Past the
 * limit it keeps the first `limit` bytes, stops reading, and calls
 * `onOverflow` once: the caller kills the child.
 */
export class Capture {
  readonly done: Promise<void>;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflowed = false;

  constructor(private readonly stream: Readable, private readonly limit: number, onOverflow: () => void) {
    stream.on('data', (chunk: Buffer) => {
      if (this.#overflowed) return;
      this.#chunks.push(chunk);
      this.#size += chunk.length;
      if (this.#size > limit) {
        this.#overflowed = true;
        stream.pause();
        onOverflow();
      }
    });
    this.done = settled(stream);
  }

  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Stop waiting for EOF (a grandchild may hold the pipe): drop the stream. */
  abandon(): void {
    this.stream.destroy();
  }

  bytes(): Uint8Array {
    return ownBytes(this.#chunks, Math.min(this.#size, this.limit));
  }
}

/** Keeps only the last `limit` bytes of a stream: stderr for error messages. */
export class Tail {
  readonly done: Promise<void>;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(private readonly stream: Readable, private readonly limit: number) {
    stream.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#size += chunk.length;
      if (this.#size > 2 * limit) this.#compact();
    });
    this.done = settled(stream);
  }

  #compact(): void {
    const all = Buffer.concat(this.#chunks);
    const kept = Buffer.from(all.subarray(all.length - this.limit));
    this.#chunks = [kept];
    this.#size = kept.length;
  }

  abandon(): void {
    this.stream.destroy();
  }

  bytes(): Uint8Array {
    if (this.#size > this.limit) this.#compact();
    return ownBytes(this.#chunks, this.#size);
  }
}
