import { hostname } from 'node:os';
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Command, CommandError, type SpawnPool } from '../main/index.js';
import type { AllowList } from './allow.js';
import { readJobData, type JobData } from './job-data.js';
import { checkBatchName, queueName } from './names.js';
import type { QueueConnection } from './queue-url.js';
import { connect, requireNoEviction } from './redis.js';
import { publishResult, type ResultRecord } from './results.js';

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
  /** In each result, for `status`; default host:pid. */
  readonly name?: string;
  readonly pool?: SpawnPool;
}

const DEFAULT_LEASE_MS = 10_000;
// spawnpool counts lost starts itself: BullMQ's stall failure ignores attempts.
const NEVER_FAIL_STALLED = 1000;

/**
 * Takes a batch's jobs from its queue, runs each with spawnpool (in its own
 * process group, as the local runner does), and publishes one result per
 * run to the batch's stream; the job itself is then removed. Nothing it
 * runs has failed to verify (key) or been left off the list (allow).
 */
export class DistributedWorker {
  readonly #name: string;

  private constructor(
    private readonly opts: DistributedWorkerOptions,
    private readonly client: Redis,
    /** Given to BullMQ, which closes only the connections it made itself. */
    private readonly blocking: Redis,
    private readonly worker: Worker,
  ) {
    this.#name = opts.name ?? `${hostname()}:${process.pid}`;
  }

  static async start(opts: DistributedWorkerOptions): Promise<DistributedWorker> {
    checkBatchName(opts.batch);
    const client = await connect(opts.queue);
    let blocking: Redis | undefined;
    try {
      await requireNoEviction(client, opts.queue.shown);
      const { Worker: BullWorker } = await import('bullmq');
      blocking = await connect(opts.queue, { blocking: true });
      const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
      let self: DistributedWorker | undefined;
      const worker = new BullWorker(queueName(opts.batch), (job: Job, _token?: string, signal?: AbortSignal) => self!.#process(job, signal), {
        connection: blocking,
        concurrency: opts.jobs ?? 1,
        lockDuration: leaseMs,
        stalledInterval: Math.max(1, Math.floor(leaseMs / 2)),
        maxStalledCount: NEVER_FAIL_STALLED,
        autorun: false,
      });
      // Connection trouble is retried by ioredis; a listener keeps it from ending the process.
      worker.on('error', () => undefined);
      self = new DistributedWorker(opts, client, blocking, worker);
      void worker.run();
      await worker.waitUntilReady();
      return self;
    } catch (err) {
      client.disconnect();
      blocking?.disconnect();
      throw err;
    }
  }

  /** Stops taking jobs, waits for the running ones, disconnects. */
  async stop(): Promise<void> {
    await this.worker.close();
    this.client.disconnect();
    this.blocking.disconnect();
  }

  async #process(job: Job, signal: AbortSignal | undefined): Promise<void> {
    const starts = job.attemptsStarted > 0 ? job.attemptsStarted : 1;
    const verdict = readJobData(job.data, this.opts.batch, this.opts.key);
    if (!verdict.ok) {
      const id = verdict.id ?? String(job.id);
      const line = typeof (job.data as { line?: unknown } | null)?.line === 'number' ? (job.data as { line: number }).line : 0;
      return this.#publish(refusal(id, line, verdict.code, verdict.message, starts));
    }
    const data = verdict.job;
    let program = data.argv[0]!;
    if (this.opts.allow !== undefined) {
      const allowed = this.opts.allow.check(program, process.env.PATH, data.cwd ?? process.cwd());
      if (!allowed.ok) return this.#publish(refusal(data.id, data.line, allowed.code, allowed.message, starts));
      // What was checked is what runs.
      program = allowed.file;
    }
    const started = Date.now();
    let record: Omit<ResultRecord, 'host' | 'endedAt'>;
    try {
      const r = await commandFor(data, program).run({ pool: this.opts.pool, signal, timeoutMs: data.timeoutMs });
      record = { id: data.id, line: data.line, ok: true, status: r.status, signal: null, code: null, durationMs: Date.now() - started, starts, pid: r.pid };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      // Cancelled by BullMQ (the lock is lost, or the worker is closing): the job is not this run's to report.
      if (signal?.aborted === true) throw err;
      record = {
        id: data.id, line: data.line, ok: false, status: err.exitStatus ?? null, signal: err.signal ?? null, code: err.code,
        message: err.message, durationMs: Date.now() - started, starts, pid: err.pid ?? null,
      };
    }
    await this.#publish(record);
  }

  async #publish(record: Omit<ResultRecord, 'host' | 'endedAt'>): Promise<void> {
    await publishResult(this.client, this.opts.batch, { ...record, host: this.#name, endedAt: new Date().toISOString() });
  }
}

function refusal(id: string, line: number, code: string, message: string, starts: number): Omit<ResultRecord, 'host' | 'endedAt'> {
  return { id, line, ok: false, status: null, signal: null, code, message, durationMs: 0, starts, pid: null };
}

/** As the local runner builds a job's command: its own process group; `env` adds to the worker's environment. */
function commandFor(data: JobData, program: string): Command {
  const cmd = new Command(program, ...data.argv.slice(1)).processGroup();
  if (data.env !== undefined) {
    for (const [k, v] of Object.entries({ ...process.env, ...data.env })) if (v !== undefined) cmd.envPair(k, v);
  }
  if (data.cwd !== undefined) cmd.cwd(data.cwd);
  if (data.input !== undefined) cmd.inputBuffer(data.input);
  return cmd;
}
