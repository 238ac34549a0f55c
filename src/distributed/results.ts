import type { Redis } from 'ioredis';
import type { JobRecord } from '../cli/joblog.js';
import { resultsKey } from './names.js';

/** One finished run, as a worker publishes it and the coordinator logs it: the joblog's record, and where and how often it ran. */
export interface ResultRecord extends JobRecord {
  readonly message?: string | undefined;
  /** How many times a worker started this job (BullMQ's count, this start included). */
  readonly starts: number;
  readonly host: string;
  readonly pid: number | null;
  /** The job's id on the queue: it is removed from there once logged. */
  readonly queueId?: string | undefined;
  /** With capture: the output, text, or base64 with `stdoutEncoding` / `stderrEncoding` set. */
  readonly stdout?: string | undefined;
  readonly stderr?: string | undefined;
  readonly stdoutEncoding?: 'base64' | undefined;
  readonly stderrEncoding?: 'base64' | undefined;
  /** A stream cut at the batch's maxOutput: how many bytes it carried in all. */
  readonly truncated?: { readonly stdout?: number; readonly stderr?: number } | undefined;
}

/** A result and its stream entry id, to delete once it is logged. */
export interface StreamedResult {
  readonly entry: string;
  readonly result: ResultRecord;
}

const FIELD = 'r';

export async function publishResult(client: Redis, batch: string, result: ResultRecord): Promise<void> {
  await client.xadd(resultsKey(batch), '*', FIELD, JSON.stringify(result));
}

/** Up to `count` results after `after` (`0`: from the start), waiting up to `blockMs` for one when there is none. */
export async function readResults(client: Redis, batch: string, after: string, count: number, blockMs: number): Promise<StreamedResult[]> {
  const reply = await client.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', resultsKey(batch), after);
  if (reply === null) return [];
  const out: StreamedResult[] = [];
  for (const [, entries] of reply) {
    for (const [entry, fields] of entries) {
      const at = fields.indexOf(FIELD);
      if (at >= 0 && at + 1 < fields.length) out.push({ entry, result: JSON.parse(fields[at + 1]!) as ResultRecord });
    }
  }
  return out;
}

/** Deletes logged results: only after the joblog holding them is synced. */
export async function ackResults(client: Redis, batch: string, entries: readonly string[]): Promise<void> {
  if (entries.length > 0) await client.xdel(resultsKey(batch), ...entries);
}
