import type { Readable } from 'node:stream';

export interface Line {
  /** 1-based. */
  readonly number: number;
  readonly text: string;
}

/**
 * The lines of a stream, one at a time. The next chunk is read only when the
 * consumer asks for more lines than are buffered, so a slow consumer holds
 * back the reader and a huge input never sits in memory.
 */
export async function* readLines(input: Readable): AsyncGenerator<Line> {
  let pending = '';
  let number = 0;
  input.setEncoding('utf8');
  for await (const chunk of input as AsyncIterable<string>) {
    pending += chunk;
    let at: number;
    while ((at = pending.indexOf('\n')) !== -1) {
      const text = pending.slice(0, at);
      pending = pending.slice(at + 1);
      yield { number: ++number, text: text.endsWith('\r') ? text.slice(0, -1) : text };
    }
  }
  if (pending.length > 0) yield { number: ++number, text: pending };
}
