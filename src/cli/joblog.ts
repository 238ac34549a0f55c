import { closeSync, fdatasyncSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { LineSink, OutputFileError } from './sink.js';

/** What the log keeps of a finished job. */
export interface JobRecord {
  readonly id: string;
  readonly line: number;
  readonly ok: boolean;
  readonly status: number | null;
  readonly signal: string | null;
  readonly code: string | null;
  readonly durationMs: number;
  readonly attempts: number;
  readonly endedAt: string;
  /** With --queue: the worker that ran it, and how many times workers started it (more than once after a worker was lost). */
  readonly host?: string | undefined;
  readonly starts?: number | undefined;
}

/** Lines between two fdatasync calls; also synced once a second and at close. */
const SYNC_EVERY = 64;
const SYNC_INTERVAL_MS = 1000;

/**
 * An append-only log, one JSON line per finished job. Each line is written
 * with its own write(2) as the job ends, so a process killed even by SIGKILL
 * has logged every job it saw finish; fdatasync runs in batches, for the
 * machine crashing as well.
 */
export class JobLog {
  readonly #sink: LineSink;
  #unsynced = 0;
  readonly #timer: NodeJS.Timeout;
  #syncFailed: OutputFileError | undefined;

  /** Throws an OutputFileError when the log cannot be opened. */
  constructor(path: string) {
    this.#sink = new LineSink(path, true);
    this.#endTornLine();
    this.#timer = setInterval(() => this.sync(), SYNC_INTERVAL_MS).unref();
  }

  /**
   * A log cut short mid-line (a full disk, a crash) would glue its torn
   * line to the first one appended now, and that job would count as never
   * logged: end it first.
   */
  #endTornLine(): void {
    let last: number | undefined;
    let fd: number | undefined;
    try {
      fd = openSync(this.#sink.path, 'r');
      const st = fstatSync(fd);
      if (st.isFile() && st.size > 0) {
        const byte = Buffer.alloc(1);
        readSync(fd, byte, 0, 1, st.size - 1);
        last = byte[0];
      }
    } catch {
      // Not a file we can read back (a pipe, a descriptor of ours): nothing to mend.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (last !== undefined && last !== 0x0a) this.#sink.write('\n');
  }

  /** The first write or sync error; after it nothing more is written. */
  get failed(): OutputFileError | undefined {
    return this.#sink.failed ?? this.#syncFailed;
  }

  /** False when the line could not be written: the job then counts as not logged. */
  append(record: JobRecord): boolean {
    if (this.failed || !this.#sink.write(`${JSON.stringify(record)}\n`)) return false;
    if (++this.#unsynced >= SYNC_EVERY) this.sync();
    return this.failed === undefined;
  }

  sync(): void {
    if (this.#unsynced === 0 || this.failed) return;
    try {
      fdatasyncSync(this.#sink.fd);
    } catch (err) {
      // A joblog on a pipe or a device cannot be synced, and need not be.
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') this.#syncFailed = new OutputFileError(this.#sink.path, err as NodeJS.ErrnoException);
    }
    this.#unsynced = 0;
  }

  close(): void {
    clearInterval(this.#timer);
    this.sync();
    this.#sink.close();
  }
}

/** Whether a job the log shows (`before`: whether it succeeded) is skipped: always with --resume, only if it succeeded with --resume-failed. */
export function skipLogged(before: boolean | undefined, resume: 'all' | 'failed' | undefined): boolean {
  return before !== undefined && !(resume === 'failed' && !before);
}

/**
 * The jobs a log shows finished, by id, with whether each succeeded. A line
 * cut short by a crash is ignored: that job did not finish as far as we know.
 */
export function readJobLog(path: string): Map<string, boolean> {
  const done = new Map<string, boolean>();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return done;
    throw err;
  }
  for (const line of text.split('\n')) {
    try {
      const r = JSON.parse(line) as Partial<JobRecord>;
      if (typeof r.id === 'string' && typeof r.ok === 'boolean') done.set(r.id, r.ok);
    } catch {
      // torn or foreign line
    }
  }
  return done;
}
