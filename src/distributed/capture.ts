import type { Readable } from 'node:stream';

/** The first bytes of a stream, and how many it carried in all. */
export interface Kept {
  readonly bytes: Buffer;
  readonly total: number;
}

/**
 * Keeps the first `max` bytes of a child's output and counts the rest
 * without keeping it: results travel through Redis, so their size is
 * bounded, but a command that says more than expected is not killed for it
 * (maxBuffer would), it is only cut short in its result.
 */
export function keepFirst(stream: Readable | undefined, max: number): Promise<Kept> {
  if (stream === undefined) return Promise.resolve({ bytes: Buffer.alloc(0), total: 0 });
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (kept >= max) return;
      const part = chunk.length <= max - kept ? chunk : chunk.subarray(0, max - kept);
      chunks.push(part);
      kept += part.length;
    });
    stream.once('end', () => resolve({ bytes: Buffer.concat(chunks, kept), total }));
    stream.once('error', reject);
  });
}
