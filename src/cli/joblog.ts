import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';

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
  readonly #fd: number;
  #unsynced = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(path: string) {
    this.#fd = openSync(path, 'a');
    this.#timer = setInterval(() => this.sync(), SYNC_INTERVAL_MS).unref();
  }

  append(record: JobRecord): void {
    writeSync(this.#fd, `${JSON.stringify(record)}\n`);
    if (++this.#unsynced >= SYNC_EVERY) this.sync();
  }

  sync(): void {
    if (this.#unsynced === 0) return;
    fdatasyncSync(this.#fd);
    this.#unsynced = 0;
  }

  close(): void {
    clearInterval(this.#timer);
    this.sync();
    closeSync(this.#fd);
  }
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
