import { hostname } from 'node:os';
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { CommandError, SpawnPool } from '../main/index.js';
import { jobCommand } from '../cli/jobs.js';
import { asBytes, outputFields } from '../cli/output.js';
import type { AllowList } from './allow.js';
import { readJobData, type JobData } from './job-data.js';
import { abortKey, checkBatchName, queueName, workersKey } from './names.js';
import type { QueueConnection } from './queue-url.js';
import { connect, requireNoEviction } from './redis.js';
import { publishResult, type ResultRecord } from './results.js';

/** Who every job runs as, with `--as-user`: as `.uid()` / `.gid()` set it. */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

export interface DistributedWorkerOptions {
  readonly queue: QueueConnection;
  readonly batch: string;
  /** Jobs run at once (BullMQ's concurrency); default 1. */
  readonly jobs?: number;
  /** How long a job's lock lasts unrenewed: a dead worker's jobs come back after about this long. Default 10 s. */
  readonly leaseMs?: number;
  /** With a key, only jobs signed with it run; the others are reported EBADSIG. */
  readonly key?: Uint8Array;
  /** Only these programs run; the others are reported EPERM. */
  readonly allow?: AllowList;
  readonly runAs?: RunAs;
  /** A job lost this many times (its worker died or lost Redis while it ran) is reported ELOST, not started again. Default 3. */
  readonly maxLost?: number;
  /** In each result and heartbeat, for `status`; default host:pid. */
  readonly name?: string;
  /**
   * On the native engine: a job must die with its worker (PR_SET_PDEATHSIG),
   * or another worker would run it again beside it. Default: a native pool
   * of the worker's own, closed by stop().
   */
  readonly pool?: SpawnPool;
  /** Shared with other batches' workers: a job runs only once it has a slot. */
  readonly slots?: { take(): Promise<() => void> };
}

/** What a worker's heartbeat says, in the batch's workers hash. */
export interface WorkerBeat {
  readonly host: string;
  readonly pid: number;
  readonly jobs: number;
  readonly running: number;
  readonly startedAt: number;
  readonly seenAt: number;
}

const DEFAULT_LEASE_MS = 10_000;
const DEFAULT_MAX_LOST = 3;
export const DEFAULT_MAX_OUTPUT = 64 * 1024;
/** A job's stream is captured whole up to this (or maxOutput, if more), then cut to maxOutput for its result. */
export const CAPTURE_LIMIT = 16 * 1024 * 1024;
// spawnpool counts lost starts itself: BullMQ's stall failure ignores attempts.
const NEVER_FAIL_STALLED = 1000;
/** How soon running jobs end after a coordinator's halt or interrupt. */
const ABORT_POLL_MS = 250;

type Bull = typeof import('bullmq');
type Outcome = Omit<ResultRecord, 'id' | 'line' | 'host' | 'endedAt' | 'starts' | 'attempts'>;

/**
 * Takes a batch's jobs from its queue, runs each with spawnpool (in its own
 * process group, as the local runner does), and publishes one result per
 * finished job to the batch's stream; the job itself is then removed.
 * Nothing it runs has failed to verify (key) or been left off the list
 * (allow). A job whose lock it can no longer renew is aborted: another
 * worker owns it by then.
 */
export class DistributedWorker {
  readonly #name: string;
  readonly #lease: number;
  /** When each running job's lock was last known held. */
  readonly #held = new Map<string, number>();
  readonly #startedAt = Date.now();
  #stopping = false;
  /** The coordinator aborted the batch's running jobs: they go back, unreported. */
  #aborted = false;
  #stopped: Promise<void> | undefined;
  #timers: NodeJS.Timeout[] = [];
  private worker!: Worker;

  private constructor(
    private readonly opts: DistributedWorkerOptions,
    private readonly bull: Bull,
    private readonly client: Redis,
    /** Given to BullMQ, which closes only the connections it made itself. */
    private readonly blocking: Redis,
    private readonly pool: SpawnPool,
    private readonly ownPool: boolean,
  ) {
    this.#name = opts.name ?? `${hostname()}:${process.pid}`;
    this.#lease = opts.leaseMs ?? DEFAULT_LEASE_MS;
  }

  static async start(opts: DistributedWorkerOptions): Promise<DistributedWorker> {
    checkBatchName(opts.batch);
    const client = await connect(opts.queue);
    let blocking: Redis | undefined;
    let pool: SpawnPool | undefined;
    try {
      await requireNoEviction(client, opts.queue.shown);
      const bull = await import('bullmq');
      blocking = await connect(opts.queue, { blocking: true });
      pool = opts.pool ?? new SpawnPool({ engine: 'native' });
      const self = new DistributedWorker(opts, bull, client, blocking, pool, opts.pool === undefined);
      await self.#run();
      return self;
    } catch (err) {
      client.disconnect();
      blocking?.disconnect();
      if (opts.pool === undefined) await pool?.close();
      throw err;
    }
  }

  async #run(): Promise<void> {
    const worker = new this.bull.Worker(queueName(this.opts.batch), (job: Job, token?: string, signal?: AbortSignal) => this.#process(job, token, signal), {
      connection: this.blocking,
      concurrency: this.opts.jobs ?? 1,
      lockDuration: this.#lease,
      stalledInterval: Math.max(1, Math.floor(this.#lease / 2)),
      maxStalledCount: NEVER_FAIL_STALLED,
      autorun: false,
    });
    this.worker = worker;
    // Connection trouble is retried by ioredis; a listener keeps it from ending the process.
    worker.on('error', () => undefined);
    worker.on('locksRenewed', ({ jobIds }: { jobIds: string[] }) => {
      const now = Date.now();
      for (const id of jobIds) if (this.#held.has(id)) this.#held.set(id, now);
    });
    worker.on('lockRenewalFailed', (ids: string[]) => {
      for (const id of ids) worker.cancelJob(id, 'lock lost');
    });
    // A renewal that hangs (Redis cut off) never fails: a lock not renewed
    // well inside the lease may already be gone, and the job with it.
    const margin = Math.min(1000, this.#lease / 5);
    const check = setInterval(() => {
      const now = Date.now();
      for (const [id, at] of this.#held) if (now - at > this.#lease - margin) worker.cancelJob(id, 'lock not renewed');
    }, Math.max(50, this.#lease / 10));
    const beat = setInterval(() => void this.#beat(), Math.max(200, Math.min(this.#lease / 2, 5000)));
    const abort = setInterval(() => void this.#checkAbort(), ABORT_POLL_MS);
    check.unref();
    beat.unref();
    abort.unref();
    this.#timers = [check, beat, abort];
    void worker.run();
    await worker.waitUntilReady();
    await this.#beat();
  }

  get name(): string {
    return this.#name;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#held.size;
  }

  async #checkAbort(): Promise<void> {
    const aborted = (await this.client.exists(abortKey(this.opts.batch)).catch(() => 0)) === 1;
    if (aborted && !this.#aborted) this.worker.cancelAllJobs('the coordinator aborted the batch');
    this.#aborted = aborted;
  }

  async #beat(): Promise<void> {
    const beat: WorkerBeat = {
      host: hostname(), pid: process.pid, jobs: this.opts.jobs ?? 1, running: this.#held.size, startedAt: this.#startedAt, seenAt: Date.now(),
    };
    await this.client.hset(workersKey(this.opts.batch), this.#name, JSON.stringify(beat)).catch(() => undefined);
  }

  /**
   * Takes no new job; the running ones get `graceMs` (default: as long as
   * they take), then are aborted and put back on the queue first in line,
   * without using an attempt. A job fetched while closing is put back at
   * once (BullMQ runs what it fetched before it saw the close).
   */
  stop({ graceMs }: { graceMs?: number } = {}): Promise<void> {
    this.#stopped ??= this.#stop(graceMs);
    return this.#stopped;
  }

  /** Ends the grace of a stop under way: the running jobs are aborted and put back now. */
  abortRunning(): void {
    if (this.#stopping) this.worker.cancelAllJobs('stopping');
  }

  async #stop(graceMs: number | undefined): Promise<void> {
    this.#stopping = true;
    const closed = this.worker.close();
    if (graceMs !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
      if ((await Promise.race([closed, late])) === 'late') this.abortRunning();
      clearTimeout(timer);
    }
    await closed;
    for (const t of this.#timers) clearInterval(t);
    await this.client.hdel(workersKey(this.opts.batch), this.#name).catch(() => undefined);
    this.client.disconnect();
    this.blocking.disconnect();
    if (this.ownPool) await this.pool.close();
  }

  async #putBack(job: Job, token: string | undefined): Promise<never> {
    await job.moveToWait(token);
    throw new this.bull.WaitingError();
  }

  async #process(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (this.#stopping || this.#aborted) return this.#putBack(job, token);
    const starts = job.attemptsStarted > 0 ? job.attemptsStarted : 1;
    const verdict = readJobData(job.data, this.opts.batch, this.opts.key);
    if (!verdict.ok) {
      const line = typeof (job.data as { line?: unknown } | null)?.line === 'number' ? (job.data as { line: number }).line : 0;
      return this.#publish(job, verdict.id ?? String(job.id), line, starts, 0, refusal(verdict.code, verdict.message));
    }
    const data = verdict.job;
    const maxLost = this.opts.maxLost ?? DEFAULT_MAX_LOST;
    if (job.stalledCounter >= maxLost) {
      return this.#publish(job, data.id, data.line, starts, 0, refusal('ELOST',
        `job ${data.id} was lost ${job.stalledCounter} times: each time its worker died or lost Redis while it ran; not started again`));
    }
    let program = data.argv[0]!;
    if (this.opts.allow !== undefined) {
      const allowed = this.opts.allow.check(program, process.env.PATH, data.cwd ?? process.cwd());
      if (!allowed.ok) return this.#publish(job, data.id, data.line, starts, 0, refusal(allowed.code, allowed.message));
      // What was checked is what runs.
      program = allowed.file;
    }
    const id = String(job.id);
    this.#held.set(id, Date.now());
    const release = await this.opts.slots?.take();
    try {
      // Stopped while it waited for a slot: back, unrun.
      if (this.#stopping || this.#aborted) return await this.#putBack(job, token);
      let attempts = 0;
      let last: Outcome;
      do {
        attempts++;
        last = await this.#runOnce(data, program, signal);
      } while (!last.ok && attempts <= (data.retries ?? 0) && signal?.aborted !== true);
      if (signal?.aborted === true) {
        // Stopping: back on the queue for another worker. Lost: another worker owns the job now; it is not this run's to report.
        if (this.#stopping || this.#aborted) return await this.#putBack(job, token);
        throw new Error(`job ${data.id}: aborted, its lock is lost (${String(signal.reason)})`);
      }
      await this.#publish(job, data.id, data.line, starts, attempts, last);
    } finally {
      release?.();
      this.#held.delete(id);
    }
  }

  async #runOnce(data: JobData, program: string, signal: AbortSignal | undefined): Promise<Outcome> {
    const capture = data.capture !== false;
    const max = data.maxOutput ?? DEFAULT_MAX_OUTPUT;
    try {
      // Said outright, not left to the engine's default: a worker SIGKILLed
      // must leave no job running behind it (another worker runs it again).
      const base = jobCommand([program, ...data.argv.slice(1)], data).parentDeathSignal('SIGKILL');
      if (this.opts.runAs !== undefined) base.uid(this.opts.runAs.uid).gid(this.opts.runAs.gid);
      const options = { pool: this.pool, signal, timeoutMs: data.timeoutMs };
      if (!capture) {
        const r = await base.outputFd(1).errorFd(2).run(options);
        return { ok: true, status: r.status, signal: null, code: null, durationMs: r.durationMs, pid: r.pid };
      }
      // Captured whole, then cut: captures take the engine's C fast path,
      // where streams read in JS would not. Only past CAPTURE_LIMIT is a job
      // ended for what it writes, as maxBuffer() ends it.
      const r = await base.captureOutput({ encoding: 'buffer' }).captureError({ encoding: 'buffer' }).maxBuffer(Math.max(max, CAPTURE_LIMIT)).run(options);
      return { ok: true, status: r.status, signal: null, code: null, durationMs: r.durationMs, pid: r.pid, ...firstBytes(r.stdout, r.stderr, max) };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      return failure(err, capture ? firstBytes(asBytes(err.stdout), asBytes(err.stderr), max) : {});
    }
  }

  async #publish(job: Job, id: string, line: number, starts: number, attempts: number, outcome: Outcome): Promise<void> {
    await publishResult(this.client, this.opts.batch, {
      ...outcome, id, line, starts, attempts, queueId: String(job.id), durationMs: Math.round(outcome.durationMs * 1000) / 1000, host: this.#name, endedAt: new Date().toISOString(),
    });
  }
}

function refusal(code: string, message: string): Outcome {
  return { ok: false, status: null, signal: null, code, message, durationMs: 0, pid: null };
}

function failure(err: CommandError, output: Record<string, unknown>): Outcome {
  return {
    ok: false, status: err.exitStatus ?? null, signal: err.signal ?? null, code: err.code, message: err.message,
    durationMs: err.durationMs ?? 0, pid: err.pid ?? null, ...output,
  };
}

/** The first `max` bytes of each stream as result fields, with what was cut off recorded. */
function firstBytes(out: Uint8Array | undefined, err: Uint8Array | undefined, max: number): Record<string, unknown> {
  const o = out ?? new Uint8Array(0);
  const e = err ?? new Uint8Array(0);
  const truncated = { ...(o.length > max ? { stdout: o.length } : {}), ...(e.length > max ? { stderr: e.length } : {}) };
  return {
    ...outputFields('stdout', o.subarray(0, max)), ...outputFields('stderr', e.subarray(0, max)),
    ...(Object.keys(truncated).length > 0 ? { truncated } : {}),
  };
}
