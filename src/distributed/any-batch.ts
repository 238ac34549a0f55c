import type { Redis } from 'ioredis';
import { BATCHES_KEY } from './names.js';
import { connect } from './redis.js';
import { DistributedWorker, type DistributedWorkerOptions } from './worker.js';

/** A count of jobs shared by a worker's batches: at most `size` run at once across them all. */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async take(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    };
  }
}

const POLL_MS = 1000;

/**
 * `spawnpool worker` without `--batch`: takes jobs from every batch
 * submitted to this Redis and not yet finished, `jobs` at once across them,
 * joining a batch when it appears and leaving it when it is done.
 */
export class AnyBatchWorker {
  readonly #workers = new Map<string, Promise<DistributedWorker | undefined>>();
  readonly #slots: Slots;
  readonly #timer: NodeJS.Timeout;
  #stopping = false;

  private constructor(private readonly opts: Omit<DistributedWorkerOptions, 'batch'>, private readonly client: Redis, private readonly onError: (batch: string, err: Error) => void) {
    this.#slots = new Slots(opts.jobs ?? 1);
    this.#timer = setInterval(() => void this.#poll(), POLL_MS);
  }

  static async start(opts: Omit<DistributedWorkerOptions, 'batch'>, onError: (batch: string, err: Error) => void = () => undefined): Promise<AnyBatchWorker> {
    const self = new AnyBatchWorker(opts, await connect(opts.queue), onError);
    await self.#poll();
    return self;
  }

  /** The batches it takes jobs from now. */
  get batches(): string[] {
    return [...this.#workers.keys()].sort();
  }

  /** Jobs running now, across the batches. */
  get running(): Promise<number> {
    return Promise.all(this.#workers.values()).then((ws) => ws.reduce((n, w) => n + (w?.running ?? 0), 0));
  }

  async #poll(): Promise<void> {
    if (this.#stopping) return;
    let batches: string[];
    try {
      batches = await this.client.smembers(BATCHES_KEY);
    } catch {
      return;
    }
    for (const batch of batches) {
      if (this.#workers.has(batch)) continue;
      this.#workers.set(batch, DistributedWorker.start({ ...this.opts, batch, slots: this.#slots }).catch((err: Error) => {
        this.onError(batch, err);
        this.#workers.delete(batch);
        return undefined;
      }));
    }
    for (const [batch, worker] of this.#workers) {
      if (batches.includes(batch)) continue;
      this.#workers.delete(batch);
      void worker.then((w) => w?.stop());
    }
  }

  stop({ graceMs }: { graceMs?: number } = {}): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#timer);
    return Promise.all([...this.#workers.values()].map(async (w) => (await w)?.stop({ graceMs }))).then(() => this.client.disconnect());
  }

  abortRunning(): void {
    for (const w of this.#workers.values()) void w.then((x) => x?.abortRunning());
  }
}
