import { closeSync, openSync, readlinkSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** An I/O error of spawnpool's own (results file, joblog): exit status 3. */
export class OutputFileError extends Error {
  constructor(readonly path: string, override readonly cause: NodeJS.ErrnoException) {
    const code = cause.code ?? 'EIO';
    super(`cannot write ${path}: ${cause.message.startsWith(code) ? cause.message : `${code}: ${cause.message}`}`);
  }
}

const OWN_FD = /^\/(?:proc\/(self|thread-self|\d+)\/fd|dev\/fd)\/(\d+)$/;

/**
 * The descriptor of this process that `path` names, when it does so through
 * /dev/stdout, /dev/fd/N or /proc/self/fd/N: writing there must share that
 * descriptor (its offset and O_APPEND), never reopen and truncate what the
 * shell opened.
 */
function ownDescriptor(path: string): number | undefined {
  let at = resolve(path);
  for (let hops = 0; hops < 16; hops++) {
    const m = OWN_FD.exec(at);
    if (m !== null && (m[1] === undefined || m[1] === 'self' || m[1] === 'thread-self' || m[1] === String(process.pid))) return Number(m[2]);
    let target: string;
    try {
      target = readlinkSync(at);
    } catch {
      return undefined;
    }
    at = resolve(dirname(at), target);
  }
  return undefined;
}

/**
 * A line-oriented output file: `-` and this process's own descriptors are
 * written through as they are; a regular file is truncated unless
 * `append`; anything else (a FIFO, a device) is opened for appending.
 */
export class LineSink {
  readonly #fd: number;
  readonly #owned: boolean;
  #failed: OutputFileError | undefined;

  constructor(readonly path: string, append: boolean) {
    const own = path === '-' ? 1 : ownDescriptor(path);
    if (own !== undefined) {
      this.#fd = own;
      this.#owned = false;
      return;
    }
    let regular = true;
    try {
      regular = statSync(path).isFile();
    } catch {
      // Not there yet: ours to create.
    }
    try {
      this.#fd = openSync(path, regular && !append ? 'w' : 'a');
    } catch (err) {
      throw new OutputFileError(path, err as NodeJS.ErrnoException);
    }
    this.#owned = true;
  }

  get fd(): number {
    return this.#fd;
  }

  /** The first write error, after which nothing more is written. */
  get failed(): OutputFileError | undefined {
    return this.#failed;
  }

  /** Writes one line whole; false once the file has failed. */
  write(line: string): boolean {
    if (this.#failed) return false;
    try {
      const bytes = Buffer.from(line);
      for (let at = 0; at < bytes.length;) at += writeSync(this.#fd, bytes, at);
      return true;
    } catch (err) {
      this.#failed = new OutputFileError(this.path, err as NodeJS.ErrnoException);
      return false;
    }
  }

  close(): void {
    if (this.#owned) closeSync(this.#fd);
  }
}
