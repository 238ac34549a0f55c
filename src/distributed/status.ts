import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { parseBeats, type SeenWorker } from './coordinator.js';
import { abortKey, BATCHES_KEY, checkBatchName, coordinatorKey, queueName, resultsKey, workersKey } from './names.js';
import type { QueueConnection } from './queue-url.js';
import { connect } from './redis.js';

export interface BatchStatus {
  readonly counts: Record<string, number>;
  readonly paused: boolean;
  /** Results in the stream that no coordinator has logged yet. */
  readonly results: number;
  /** host:pid of the coordinator holding the batch's lease. */
  readonly coordinator: string | undefined;
  readonly workers: readonly SeenWorker[];
  readonly oldest: { readonly id: string; readonly since: number } | undefined;
}

async function withQueue<T>(conn: QueueConnection, batch: string, use: (queue: Queue, client: Redis) => Promise<T>): Promise<T> {
  checkBatchName(batch);
  const client = await connect(conn);
  const { Queue: BullQueue } = await import('bullmq');
  const queue = new BullQueue(queueName(batch), { connection: client });
  queue.on('error', () => undefined);
  try {
    return await use(queue, client);
  } finally {
    await queue.close();
    client.disconnect();
  }
}

export function batchStatus(conn: QueueConnection, batch: string): Promise<BatchStatus> {
  return withQueue(conn, batch, async (queue, client) => {
    const [counts, paused, results, holder, beats, active] = await Promise.all([
      queue.getJobCounts('waiting', 'active', 'delayed', 'failed'), queue.isPaused(), client.xlen(resultsKey(batch)),
      client.get(coordinatorKey(batch)), client.hgetall(workersKey(batch)), queue.getActive(0, 999),
    ]);
    let oldest: BatchStatus['oldest'];
    for (const job of active) {
      const since = job.processedOn ?? job.timestamp;
      const id = typeof (job.data as { id?: unknown } | null)?.id === 'string' ? (job.data as { id: string }).id : String(job.id);
      if (oldest === undefined || since < oldest.since) oldest = { id, since };
    }
    return {
      counts, paused, results, coordinator: holder === null ? undefined : holder.split(':').slice(0, 2).join(':'),
      workers: parseBeats(beats).sort((a, b) => a.name.localeCompare(b.name)), oldest,
    };
  });
}

/** How long a cancel waits for the aborted jobs to be put back before it removes the waiting ones anyway. */
const CANCEL_WAIT_MS = 30_000;

/**
 * Pauses the batch, has its workers abort and put back the running jobs,
 * and removes the waiting ones; what finished stays in the results stream
 * for the coordinator to log. The queue stays paused until a run resumes it.
 */
export function cancelBatch(conn: QueueConnection, batch: string): Promise<{ aborted: number; removed: number }> {
  return withQueue(conn, batch, async (queue, client) => {
    await queue.pause();
    const aborted = (await queue.getJobCounts('active')).active ?? 0;
    await client.set(abortKey(batch), 'cancel', 'PX', CANCEL_WAIT_MS * 2);
    const deadline = Date.now() + CANCEL_WAIT_MS;
    while (((await queue.getJobCounts('active')).active ?? 0) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const removed = (await queue.getJobCounts('waiting', 'delayed')) as Record<string, number>;
    await queue.drain(true);
    await client.del(abortKey(batch));
    return { aborted, removed: (removed.waiting ?? 0) + (removed.delayed ?? 0) };
  });
}

/** The batches submitted to this Redis and not yet finished. */
export async function listBatches(conn: QueueConnection): Promise<string[]> {
  const client = await connect(conn);
  try {
    return (await client.smembers(BATCHES_KEY)).sort();
  } finally {
    client.disconnect();
  }
}
