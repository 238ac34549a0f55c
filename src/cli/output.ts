/** What output is written to. */
export interface Writer {
  write(chunk: Uint8Array): unknown;
}

/** Where the jobs' output goes: spawnpool's stdout and stderr, or nowhere after EPIPE. */
export interface OutputStreams {
  readonly stdout: Writer;
  readonly stderr: Writer;
  /** Before a block is written: clears a progress line sharing the terminal. */
  readonly beforeWrite?: () => void;
}

const EMPTY = new Uint8Array(0);

/** Prefixes every line of `bytes` (a last one without a newline too) with `prefix`. */
export function tagLines(bytes: Uint8Array, prefix: string): Uint8Array {
  if (bytes.length === 0) return bytes;
  const tag = Buffer.from(prefix);
  const parts: Uint8Array[] = [];
  let from = 0;
  while (from < bytes.length) {
    const nl = bytes.indexOf(10, from);
    const to = nl === -1 ? bytes.length : nl + 1;
    parts.push(tag, bytes.subarray(from, to));
    from = to;
  }
  return Buffer.concat(parts);
}

/**
 * GNU parallel's grouping: a job's stdout, then its stderr, each written as
 * one block when the job ends, so that jobs never interleave. With
 * `keepOrder` the blocks come out in input order: a job's output waits until
 * every job before it has been written or dropped.
 */
export class GroupedOutput {
  readonly #held = new Map<number, readonly [Uint8Array, Uint8Array]>();
  #next = 0;

  constructor(private readonly streams: OutputStreams, private readonly keepOrder: boolean, private readonly tag: boolean) {}

  /** Job `index` (0-based, input order) ended with this output; `label` prefixes its lines under --tag. */
  ended(index: number, label: string, stdout: Uint8Array | undefined, stderr: Uint8Array | undefined): void {
    const out = this.tag ? tagLines(stdout ?? EMPTY, `${label}\t`) : stdout ?? EMPTY;
    const err = this.tag ? tagLines(stderr ?? EMPTY, `${label}\t`) : stderr ?? EMPTY;
    if (!this.keepOrder) return this.#write(out, err);
    this.#held.set(index, [out, err]);
    this.#flush();
  }

  /** Job `index` has no output to show (skipped, not started, interrupted): later ones need not wait for it. */
  dropped(index: number): void {
    if (!this.keepOrder) return;
    this.#held.set(index, [EMPTY, EMPTY]);
    this.#flush();
  }

  /** At the end: whatever still waits for a job that never reported (an interrupted batch), in order. */
  finish(): void {
    for (const index of [...this.#held.keys()].sort((a, b) => a - b)) {
      const [out, err] = this.#held.get(index)!;
      this.#write(out, err);
    }
    this.#held.clear();
  }

  #flush(): void {
    for (let block = this.#held.get(this.#next); block !== undefined; block = this.#held.get(this.#next)) {
      this.#held.delete(this.#next++);
      this.#write(block[0], block[1]);
    }
  }

  #write(out: Uint8Array, err: Uint8Array): void {
    if (out.length === 0 && err.length === 0) return;
    this.streams.beforeWrite?.();
    if (out.length > 0) this.streams.stdout.write(out);
    if (err.length > 0) this.streams.stderr.write(err);
  }
}

/** Captured output as bytes, whichever encoding it was captured in. */
export const asBytes = (v: string | Uint8Array | undefined): Uint8Array | undefined => (typeof v === 'string' ? Buffer.from(v) : v);

const strict = new TextDecoder('utf-8', { fatal: true });

/** Output in a JSON record: text when it is UTF-8, else base64 with a flag beside. */
export function outputFields(name: 'stdout' | 'stderr', b: Uint8Array): Record<string, string> {
  try {
    return { [name]: strict.decode(b) };
  } catch {
    return { [name]: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64'), [`${name}Encoding`]: 'base64' };
  }
}

/** The bytes back from outputFields. */
export function outputBytes(text: string | undefined, encoding: string | undefined): Buffer | undefined {
  if (text === undefined) return undefined;
  return Buffer.from(text, encoding === 'base64' ? 'base64' : 'utf8');
}
