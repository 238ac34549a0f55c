import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { queueJobId, toJobData } from './job-data.js';
import { BATCHES_KEY, checkBatchName, queueName } from './names.js';
import type { QueueConnection } from './queue-url.js';
import { connect, requireNoEviction } from './redis.js';
import type { SignedFields } from './signing.js';

/** A job to enqueue: what runs, and its line for the joblog. */
export interface SubmittedJob {
  readonly fields: Omit<SignedFields, 'batch'>;
  readonly line: number;
}

export class SubmitError extends Error {
  readonly code = 'EINVAL';
}

// addBulk is one Lua call per job in a MULTI: chunks of ~1000 measured best.
const CHUNK = 1000;

/**
 * Puts a batch's jobs on its queue. A job whose id is already there is
 * ignored by BullMQ (its id is the queue id). A finished job stays there
 * until its result is logged: were it removed as it completed, a
 * coordinator resuming after a crash could submit it again between its
 * end and the reading of its result, and it would run twice.
 */
export class Submitter {
  private constructor(private readonly batch: string, private readonly queue: Queue, private readonly client: Redis, private readonly key: Uint8Array | undefined) {}

  static async open(conn: QueueConnection, batch: string, key?: Uint8Array): Promise<Submitter> {
    checkBatchName(batch);
    const client = await connect(conn);
    try {
      await requireNoEviction(client, conn.shown);
      const { Queue: BullQueue } = await import('bullmq');
      // The events stream carries no data of ours: results have their own stream.
      const queue = new BullQueue(queueName(batch), { connection: client, streams: { events: { maxLen: 1000 } } });
      queue.on('error', () => undefined);
      await client.sadd(BATCHES_KEY, batch);
      return new Submitter(batch, queue, client, key);
    } catch (err) {
      client.disconnect();
      throw err;
    }
  }

  /** Enqueues them all, in chunks; throws SubmitError before anything is sent for an id with no queue id. */
  async submit(jobs: readonly SubmittedJob[]): Promise<void> {
    const bulk = jobs.map(({ fields, line }) => {
      const jobId = queueJobId(fields.id);
      if (jobId === undefined) throw new SubmitError(`job id ${JSON.stringify(fields.id)} (line ${line}) is not valid Unicode`);
      return { name: 'run', data: toJobData({ ...fields, batch: this.batch }, line, this.key), opts: { jobId, removeOnComplete: false, removeOnFail: false } };
    });
    for (let i = 0; i < bulk.length; i += CHUNK) await this.queue.addBulk(bulk.slice(i, i + CHUNK));
  }

  /** Jobs waiting, running, delayed, failed (BullMQ's counts). */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
  }

  /** Removes finished jobs; returns the ids still locked (a worker has published the result and not yet completed the job): try those again. */
  async remove(queueIds: readonly string[]): Promise<string[]> {
    const locked: string[] = [];
    await Promise.all(queueIds.map(async (id) => {
      try {
        if ((await this.queue.remove(id)) === 0) locked.push(id);
      } catch {
        // Gone already.
      }
    }));
    return locked;
  }

  /** Removes the finished jobs among these ids (spawnpool ids), so that they can be submitted again. */
  async forgetFinished(ids: readonly string[]): Promise<void> {
    const queueIds = ids.flatMap((id) => queueJobId(id) ?? []);
    const states = await Promise.all(queueIds.map((id) => this.queue.getJobState(id)));
    await this.remove(queueIds.filter((_, i) => states[i] === 'completed' || states[i] === 'failed'));
  }

  isPaused(): Promise<boolean> {
    return this.queue.isPaused();
  }

  pause(): Promise<void> {
    return this.queue.pause();
  }

  resume(): Promise<void> {
    return this.queue.resume();
  }

  /** Removes the waiting jobs (and the delayed ones). */
  drain(): Promise<void> {
    return this.queue.drain(true);
  }

  /** Jobs BullMQ failed, a thousand at most. */
  failed(): Promise<Job[]> {
    return this.queue.getFailed(0, 999);
  }

  /** The batch is done: it leaves the list of batches workers given none take jobs from. */
  async finished(): Promise<void> {
    await this.client.srem(BATCHES_KEY, this.batch);
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.client.disconnect();
  }
}
