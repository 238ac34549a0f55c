import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { bigBuffer } from './big-buffer.js';

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

/** Up to this size a result is copied out at its exact size; past it, growth uses huge pages and the result is a view. */
const SPILL_BYTES = 4 * 1024 * 1024;

/**
 * Keeps what a child writes to one stream, up to `limit` bytes. Past the
 * limit it keeps the first `limit` bytes, stops reading, and calls
 * `onOverflow` once: the caller kills the child.
 *
 * Each chunk is copied into one buffer that doubles as it fills (huge pages
 * past 4 MiB) and then dropped, so the allocator hands the same few chunks
 * out again: a large capture touches fresh memory once, for the bytes it
 * keeps. On some hypervisors a first touch costs tens of microseconds per
 * 4 KiB page, and that was the whole cost of keeping chunks in a list.
 * (Letting libuv read() straight into the buffer measured slower here.)
 */
export class Capture {
  readonly done: Promise<void>;
  #buf: Uint8Array = new Uint8Array(0);
  #kept = 0;
  #overflowed = false;

  constructor(private readonly stream: Readable, private readonly limit: number, onOverflow: () => void) {
    stream.on('data', (chunk: Buffer) => {
      if (this.#overflowed) return;
      if (this.#kept + chunk.length > limit) {
        this.#keep(chunk.subarray(0, limit - this.#kept));
        this.#overflowed = true;
        stream.pause();
        onOverflow();
      } else {
        this.#keep(chunk);
      }
    });
    this.done = settled(stream);
  }

  #keep(bytes: Uint8Array): void {
    const end = this.#kept + bytes.length;
    if (end > this.#buf.length) {
      // The first chunk's size, then doubling: a short output is one exact copy.
      const size = Math.min(this.limit, Math.max(end, 2 * this.#buf.length));
      const grown = size > SPILL_BYTES ? bigBuffer(size) : new Uint8Array(size);
      grown.set(this.#buf.subarray(0, this.#kept));
      this.#buf = grown;
    }
    this.#buf.set(bytes, this.#kept);
    this.#kept = end;
  }

  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Stop waiting for EOF (a grandchild may hold the pipe): drop the stream. */
  abandon(): void {
    this.stream.destroy();
  }

  /** What was kept: its own buffer of its exact size, or past 4 MiB a view of a buffer up to twice that. */
  bytes(): Uint8Array {
    const kept = this.#buf.subarray(0, this.#kept);
    return this.#kept > SPILL_BYTES || this.#kept === this.#buf.length ? kept : new Uint8Array(kept);
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
