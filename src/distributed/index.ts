/**
 * spawnpool/distributed: batches over a queue shared by many machines.
 * Loaded only by what imports it, so that a program that never distributes
 * never loads the queue's client.
 */
export { canonicalJson, loadKey, signJob, signedBytes, verifyJob, KeyError, type SignedFields, type Verdict } from './signing.js';
export { parseQueueUrl, redact, QueueUrlError, type QueueConnection } from './queue-url.js';
export { connect, requireNoEviction, QueueError } from './redis.js';
export { AllowList, AllowListError, type AllowVerdict } from './allow.js';
export { queueJobId, readJobData, toJobData, type JobData, type JobDataVerdict } from './job-data.js';
export { checkBatchName, BatchNameError } from './names.js';
export { ackResults, readResults, type ResultRecord, type StreamedResult } from './results.js';
export { DistributedWorker, CAPTURE_LIMIT, DEFAULT_MAX_OUTPUT, type DistributedWorkerOptions, type RunAs, type WorkerBeat } from './worker.js';
export { Submitter, SubmitError, type SubmittedJob } from './submit.js';
export { Coordinator, type CoordinatorOptions, type SeenWorker } from './coordinator.js';
export { batchStatus, cancelBatch, listBatches, type BatchStatus } from './status.js';
export { AnyBatchWorker, Slots } from './any-batch.js';
