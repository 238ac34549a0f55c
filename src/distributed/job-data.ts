import { signJob, verifyJob, type SignedFields } from './signing.js';

/**
 * A job as it sits in the queue: the batch line's fields, the batch's
 * limits, and the signature over them. What a worker reads back may have
 * been written by anyone who can reach Redis, so it is checked field by
 * field before anything else looks at it.
 */
export interface JobData extends SignedFields {
  readonly v: 1;
  /** The input line (JSONL), or the job number (templates): for the joblog. */
  readonly line: number;
  /** HMAC-SHA256 (signing.ts), when the batch has a key. */
  readonly sig?: string | undefined;
}

export type JobDataVerdict =
  | { readonly ok: true; readonly job: JobData }
  | { readonly ok: false; readonly code: 'EBADSIG' | 'EINVAL'; readonly message: string; readonly id: string | undefined };

/**
 * BullMQ refuses custom ids made only of digits or holding `:` (both
 * measured); a prefix and percent-encoding make every id acceptable, and
 * keep distinct ids distinct. An id that is not valid Unicode (a lone
 * surrogate from a JSON escape) has no encoding: EINVAL at submit.
 */
export function queueJobId(id: string): string | undefined {
  try {
    return `j${encodeURIComponent(id)}`;
  } catch {
    return undefined;
  }
}

/** The queue's copy of a job, signed with `key` when there is one. */
export function toJobData(fields: SignedFields, line: number, key: Uint8Array | undefined): JobData {
  const data: JobData = { v: 1, line, ...fields };
  return key === undefined ? data : { ...data, sig: signJob(data, key) };
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isStringRecord = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(isString);
const optional = (v: unknown, test: (v: unknown) => boolean): boolean => v === undefined || test(v);
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

const FIELDS = new Set(['v', 'line', 'sig', 'batch', 'id', 'argv', 'env', 'cwd', 'input', 'timeoutMs', 'retries', 'maxOutput', 'capture']);

function problem(d: Record<string, unknown>): string | undefined {
  const unknown = Object.keys(d).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) return `unknown field ${JSON.stringify(unknown)}`;
  if (d.v !== 1) return `version ${JSON.stringify(d.v)}, not 1`;
  if (!isString(d.batch) || !isString(d.id)) return 'no batch or id';
  if (!Array.isArray(d.argv) || d.argv.length === 0 || !d.argv.every(isString)) return '"argv" is not a non-empty array of strings';
  if (!isCount(d.line)) return '"line" is not a line number';
  if (!optional(d.env, isStringRecord)) return '"env" is not an object of strings';
  if (!optional(d.cwd, isString) || !optional(d.input, isString) || !optional(d.sig, isString)) return 'a text field is not a string';
  if (!optional(d.timeoutMs, isCount) || !optional(d.retries, isCount) || !optional(d.maxOutput, isCount)) return 'a limit is not a count';
  if (!optional(d.capture, (v) => typeof v === 'boolean')) return '"capture" is not a boolean';
  return undefined;
}

/**
 * What a worker may run: well-formed, of its batch, and, when the worker
 * has a key, signed with it (a worker with a key never runs an unsigned job).
 */
export function readJobData(data: unknown, batch: string, key: Uint8Array | undefined): JobDataVerdict {
  const isObject = typeof data === 'object' && data !== null && !Array.isArray(data);
  const d = (isObject ? data : {}) as Record<string, unknown>;
  const id = isString(d.id) ? d.id : undefined;
  const wrong = isObject ? problem(d) : 'not an object';
  if (wrong !== undefined) return { ok: false, code: 'EINVAL', message: `not a spawnpool job: ${wrong}`, id };
  const job = d as unknown as JobData;
  if (key !== undefined) {
    const verdict = verifyJob(job, job.sig, key);
    if (!verdict.ok) return { ok: false, code: 'EBADSIG', message: verdict.message, id };
  }
  // Checked after the signature: a signed job of another batch is a replay.
  if (job.batch !== batch) return { ok: false, code: key === undefined ? 'EINVAL' : 'EBADSIG', message: `job ${JSON.stringify(job.id)} belongs to batch ${JSON.stringify(job.batch)}, not ${JSON.stringify(batch)}`, id };
  return { ok: true, job };
}
