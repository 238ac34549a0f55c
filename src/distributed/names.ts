/**
 * One BullMQ queue per batch, `sp-<batch>`, and the batch's own keys beside
 * it. BullMQ's names may not hold `:` (its key separator); a batch name is
 * kept to what reads well in a key and on a command line.
 */
const BATCH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export class BatchNameError extends Error {
  readonly code = 'EINVAL';
}

export function checkBatchName(batch: string): string {
  if (!BATCH_NAME.test(batch)) {
    throw new BatchNameError(`batch name ${JSON.stringify(batch)}: letters, digits, '.', '_' and '-' only, at most 100, not starting with a sign`);
  }
  return batch;
}

export const queueName = (batch: string): string => `sp-${batch}`;

/** The stream workers publish finished runs to; the coordinator logs then deletes its entries. */
export const resultsKey = (batch: string): string => `sp-${batch}:results`;

/** The coordinator's lease: one coordinator per batch (SET NX PX, renewed). */
export const coordinatorKey = (batch: string): string => `sp-${batch}:coordinator`;

/** Workers' heartbeats, a hash by worker name: what `status` and the progress line show. */
export const workersKey = (batch: string): string => `sp-${batch}:workers`;

/** Set by a coordinator that halts or is interrupted: workers abort the batch's running jobs and put them back. */
export const abortKey = (batch: string): string => `sp-${batch}:abort`;

/** Every batch submitted to this Redis and not yet finished: for `status` and for workers given no batch. */
export const BATCHES_KEY = 'spawnpool:batches';
