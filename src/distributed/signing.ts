import { createHmac, timingSafeEqual } from 'node:crypto';
import { fstatSync, openSync, closeSync, readFileSync } from 'node:fs';

/**
 * Jobs on a shared queue are a remote-execution surface: anyone who can
 * write to that Redis could make every worker run anything. With a key on
 * both sides, the coordinator signs every job and a worker runs nothing
 * whose signature does not verify. The signature covers the canonical
 * encoding of everything that decides what runs and how (batch, id, argv,
 * env, cwd, input, limits), so that no field can be changed, added or
 * moved between jobs or batches without the worker noticing.
 */

/** What a signature covers: the job as the worker will carry it out. */
export interface SignedFields {
  readonly batch: string;
  readonly id: string;
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly cwd?: string | undefined;
  /** The text fed to stdin, as the job line gives it. */
  readonly input?: string | undefined;
  readonly timeoutMs?: number | undefined;
  readonly retries?: number | undefined;
  readonly maxOutput?: number | undefined;
  readonly capture?: boolean | undefined;
}

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly code: 'EBADSIG'; readonly message: string };

/** Domain separation: a MAC made for anything else never verifies as a job's. */
const CONTEXT = 'spawnpool job v1\n';
const MIN_KEY_BYTES = 32;

type Canonical = string | number | boolean | null | readonly Canonical[] | { readonly [key: string]: Canonical | undefined };

/**
 * JSON with object keys sorted and undefined members left out: one byte
 * string per value, whatever the order its keys were written in.
 */
export function canonicalJson(value: Canonical): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot sign the number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v: Canonical) => canonicalJson(v)).join(',')}]`;
  const object = value as { readonly [key: string]: Canonical | undefined };
  const members = Object.keys(object)
    .filter((k) => object[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(object[k]!)}`);
  return `{${members.join(',')}}`;
}

/** The bytes a signature is made over. */
export function signedBytes(job: SignedFields): Buffer {
  const fields: Canonical = {
    batch: job.batch, id: job.id, argv: job.argv, env: job.env, cwd: job.cwd, input: job.input,
    timeoutMs: job.timeoutMs, retries: job.retries, maxOutput: job.maxOutput, capture: job.capture,
  };
  return Buffer.from(CONTEXT + canonicalJson(fields), 'utf8');
}

/** HMAC-SHA256 of the job's canonical encoding, base64url. */
export function signJob(job: SignedFields, key: Uint8Array): string {
  return createHmac('sha256', key).update(signedBytes(job)).digest('base64url');
}

/** Whether `signature` is this key's over exactly these fields; compared in constant time. */
export function verifyJob(job: SignedFields, signature: unknown, key: Uint8Array): Verdict {
  if (typeof signature !== 'string' || signature === '') {
    return { ok: false, code: 'EBADSIG', message: `job ${JSON.stringify(job.id)} is not signed, and this worker runs only signed jobs` };
  }
  const expected = createHmac('sha256', key).update(signedBytes(job)).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, code: 'EBADSIG', message: `job ${JSON.stringify(job.id)}: its signature does not verify with this worker's key` };
  }
  return { ok: true };
}

/** A key that cannot be used, with the reason. */
export class KeyError extends Error {
  constructor(readonly code: 'EINVAL' | 'EPERM' | 'ENOENT' | 'EACCES', message: string) {
    super(message);
  }
}

function checked(key: Buffer, from: string): Buffer {
  if (key.length < MIN_KEY_BYTES) throw new KeyError('EINVAL', `the key in ${from} has ${key.length} bytes; at least ${MIN_KEY_BYTES} are needed`);
  return key;
}

/**
 * The signing key: `--key-file F` (its bytes, a final newline dropped), or
 * else SPAWNPOOL_KEY; undefined when neither is given. A key file that its
 * group or others can read is refused, as ssh refuses such a private key.
 */
export function loadKey(keyFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  if (keyFile === undefined) {
    const fromEnv = env.SPAWNPOOL_KEY;
    return fromEnv === undefined || fromEnv === '' ? undefined : checked(Buffer.from(fromEnv, 'utf8'), 'SPAWNPOOL_KEY');
  }
  let fd: number;
  try {
    fd = openSync(keyFile, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'EACCES' ? 'EACCES' : 'ENOENT';
    throw new KeyError(code, `cannot read the key file ${keyFile}: ${(err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new KeyError('EINVAL', `the key file ${keyFile} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new KeyError('EPERM', `the key file ${keyFile} can be read by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    }
    let key = readFileSync(fd);
    if (key.at(-1) === 0x0a) key = key.subarray(0, key.length - (key.at(-2) === 0x0d ? 2 : 1));
    return checked(key, keyFile);
  } finally {
    closeSync(fd);
  }
}
