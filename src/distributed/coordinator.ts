import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { abortKey, coordinatorKey, resultsKey, workersKey } from './names.js';
import type { QueueConnection } from './queue-url.js';
import { connect, QueueError } from './redis.js';
import { ackResults, publishResult, readResults, type StreamedResult } from './results.js';
import { Submitter, type SubmittedJob } from './submit.js';
import type { WorkerBeat } from './worker.js';

export interface CoordinatorOptions {
  readonly queue: QueueConnection;
  readonly batch: string;
  readonly key?: Uint8Array | undefined;
  /** The coordinator's own lease; renewed a few times within it. Default 30 s. */
  readonly leaseMs?: number;
  /** Called once if the lease is lost (Redis cut off for longer than it, or taken over): stop. */
  readonly onLeaseLost?: () => void;
}

/** A worker seen in the batch's heartbeats. */
export interface SeenWorker extends WorkerBeat {
  readonly name: string;
}

const DEFAULT_LEASE_MS = 30_000;
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const DROP_EMPTY = "if redis.call('exists', KEYS[1]) == 1 and redis.call('xlen', KEYS[1]) == 0 then return redis.call('del', KEYS[1]) else return 0 end";
const TAKE_OVER = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 else return 0 end";
/** How long workers keep putting back what they run after an abort, unless it is lifted first. */
const ABORT_TTL_MS = 60_000;

/**
 * The one process that runs a batch: it holds the batch's lease (a second
 * coordinator is refused), submits jobs, and reads the results workers
 * publish, from the oldest not yet deleted, so that a coordinator started
 * after one that died first collects what arrived meanwhile.
 */
export class Coordinator {
  #cursor = '0';
  readonly #renewal: NodeJS.Timeout;
  #lost = false;
  readonly #unremoved = new Set<string>();

  private constructor(
    private readonly opts: CoordinatorOptions,
    readonly holder: string,
    private readonly submitter: Submitter,
    private readonly client: Redis,
    /** XREAD BLOCK holds a connection: results are read on one of their own. */
    private readonly reader: Redis,
  ) {
    const lease = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.#renewal = setInterval(() => void this.#renew(lease), Math.max(100, Math.floor(lease / 3)));
    this.#renewal.unref();
  }

  /** Takes the batch's lease; QueueError EBUSY when another coordinator holds it. */
  static async open(opts: CoordinatorOptions): Promise<Coordinator> {
    const submitter = await Submitter.open(opts.queue, opts.batch, opts.key);
    const clients: Redis[] = [];
    try {
      clients.push(await connect(opts.queue), await connect(opts.queue));
      const [client, reader] = clients as [Redis, Redis];
      const holder = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
      const key = coordinatorKey(opts.batch);
      const lease = opts.leaseMs ?? DEFAULT_LEASE_MS;
      if ((await client.set(key, holder, 'PX', lease, 'NX')) !== 'OK' && !(await takeOverDead(client, key, holder, lease))) {
        const other = (await client.get(key)) ?? 'another coordinator';
        const ttl = await client.pttl(key);
        throw new QueueError('EBUSY', `batch ${opts.batch} is being run by ${other.split(':').slice(0, 2).join(':')}` +
          `${ttl > 0 ? ` (its lease ends in ${Math.ceil(ttl / 1000)} s unless renewed)` : ''}`);
      }
      return new Coordinator(opts, holder, submitter, client, reader);
    } catch (err) {
      for (const c of clients) c.disconnect();
      await submitter.close();
      throw err;
    }
  }

  async #renew(lease: number): Promise<void> {
    if (this.#lost) return;
    let renewed: unknown = 0;
    try {
      renewed = await this.client.eval(RENEW, 1, coordinatorKey(this.opts.batch), this.holder, lease);
    } catch {
      // A renewal that fails now may succeed at the next tick, within the lease.
      return;
    }
    if (renewed === 1) return;
    this.#lost = true;
    this.opts.onLeaseLost?.();
  }

  /** Lifts a pause and an abort left by an earlier coordinator's halt or interrupt. */
  async resume(): Promise<void> {
    await this.client.del(abortKey(this.opts.batch));
    await this.submitter.resume();
  }

  submit(jobs: readonly SubmittedJob[]): Promise<void> {
    return this.submitter.submit(jobs);
  }

  /**
   * Jobs of this batch that are neither waiting, running nor reported (a
   * Redis restarted without persistence): submitted again; one finished
   * whose result is gone too is removed first, or its id would be ignored.
   */
  async submitLost(jobs: readonly SubmittedJob[]): Promise<void> {
    await this.submitter.forgetFinished(jobs.map((j) => j.fields.id));
    await this.submitter.submit(jobs);
  }

  /** Results after the last read, waiting up to `blockMs` for one. */
  async results(count: number, blockMs: number): Promise<StreamedResult[]> {
    const got = await readResults(this.reader, this.opts.batch, this.#cursor, count, blockMs);
    if (got.length > 0) this.#cursor = got[got.length - 1]!.entry;
    return got;
  }

  /**
   * Once the joblog that holds them is synced: removes their jobs from the
   * queue, then deletes the results. In that order, a crash between the two
   * leaves a result to replay (logged already: dropped), never a finished
   * job that nothing would remove.
   */
  async ack(results: readonly StreamedResult[]): Promise<void> {
    const ids = results.flatMap((r) => (r.result.queueId === undefined ? [] : [r.result.queueId]));
    for (const id of await this.submitter.remove(ids)) this.#unremoved.add(id);
    await ackResults(this.client, this.opts.batch, results.map((r) => r.entry));
  }

  /** Finished jobs not removed at their ack (still locked then): tried again; how many are left. */
  async retryRemovals(): Promise<number> {
    const ids = [...this.#unremoved];
    this.#unremoved.clear();
    for (const id of await this.submitter.remove(ids)) this.#unremoved.add(id);
    return this.#unremoved.size;
  }

  /**
   * Jobs BullMQ itself failed (a worker's processor threw: Redis lost
   * mid-publish, a fault of spawnpool's own): each becomes an EQUEUE result
   * in the stream, then leaves the failed set, so that they are logged like
   * any other (a crash between the two only publishes it twice).
   */
  async sweepFailed(): Promise<number> {
    const failed = (await this.submitter.failed()).filter((j): j is Job => j !== undefined);
    for (const job of failed) {
      const data = (job.data ?? {}) as { id?: unknown; line?: unknown };
      await publishResult(this.client, this.opts.batch, {
        id: typeof data.id === 'string' ? data.id : String(job.id), line: typeof data.line === 'number' ? data.line : 0,
        ok: false, status: null, signal: null, code: 'EQUEUE', message: `the queue failed the job: ${job.failedReason}`,
        durationMs: 0, attempts: job.attemptsMade, starts: job.attemptsStarted, host: '', pid: null, endedAt: new Date().toISOString(),
      });
      await job.remove();
    }
    return failed.length;
  }

  isPaused(): Promise<boolean> {
    return this.submitter.isPaused();
  }

  /** The batch's jobs BullMQ holds: waiting, running, delayed, failed. */
  counts(): Promise<Record<string, number>> {
    return this.submitter.counts();
  }

  async workers(): Promise<SeenWorker[]> {
    return parseBeats(await this.client.hgetall(workersKey(this.opts.batch)));
  }

  /**
   * No job starts any more; the running ones are aborted and put back by
   * their workers (`abortRunning`), then the waiting ones are removed: none
   * of them is logged, so the next run of the batch submits them again.
   */
  async pause({ abortRunning }: { abortRunning: boolean }): Promise<void> {
    await this.submitter.pause();
    if (abortRunning) await this.client.set(abortKey(this.opts.batch), this.holder, 'PX', ABORT_TTL_MS);
  }

  /** After a pause: removes the waiting jobs (and the ones put back). */
  drain(): Promise<void> {
    return this.submitter.drain();
  }

  /** `finished`: every job of the batch is logged; it leaves the list of batches. */
  async close({ finished = false }: { finished?: boolean } = {}): Promise<void> {
    clearInterval(this.#renewal);
    try {
      if (finished) await this.submitter.finished();
      for (let i = 0; i < 20 && (await this.retryRemovals()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
      await this.client.del(abortKey(this.opts.batch));
      await this.client.eval(RELEASE, 1, coordinatorKey(this.opts.batch), this.holder);
      // Logged and deleted to the last: the empty stream goes too (a worker's next result makes it again).
      await this.client.eval(DROP_EMPTY, 1, resultsKey(this.opts.batch));
    } catch {
      // Redis gone: the lease runs out by itself.
    }
    await this.submitter.close();
    this.client.disconnect();
    this.reader.disconnect();
  }
}

/**
 * A lease left by a coordinator of this host that is gone (SIGKILL, a
 * crash) need not be waited out: its pid is checked, as a stale pidfile's
 * is, and the lease taken over if it still names that holder.
 */
async function takeOverDead(client: Redis, key: string, holder: string, lease: number): Promise<boolean> {
  const other = await client.get(key);
  const [host, pid] = other?.split(':') ?? [];
  if (other === null || host !== hostname() || !/^\d+$/.test(pid ?? '') || alive(Number(pid))) return false;
  return (await client.eval(TAKE_OVER, 1, key, other, holder, lease)) === 1;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The workers hash, its junk left out. */
export function parseBeats(hash: Record<string, string>): SeenWorker[] {
  const out: SeenWorker[] = [];
  for (const [name, text] of Object.entries(hash)) {
    try {
      const beat = JSON.parse(text) as WorkerBeat;
      if (typeof beat.seenAt === 'number') out.push({ ...beat, name });
    } catch {
      // not a beat of ours
    }
  }
  return out;
}
