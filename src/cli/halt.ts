import { UsageError } from './usage.js';

/** GNU parallel's --halt: when to stop starting jobs, and whether to end the running ones. */
export interface HaltPolicy {
  /** 'now': the running jobs are ended too; 'soon': they finish. */
  readonly when: 'now' | 'soon';
  readonly on: 'fail' | 'success';
  /** A count of jobs, or (with `percent`) a share of them. */
  readonly threshold: number;
  readonly percent: boolean;
  /** As written, for messages. */
  readonly text: string;
}

/**
 * `never`, `now|soon,fail=N|N%|success=N|N%`, and parallel's old forms:
 * `0` (never), `1` (soon,fail=1), `2` (now,fail=1).
 */
export function parseHalt(text: string): HaltPolicy | undefined {
  if (text === 'never' || text === '0') return undefined;
  if (text === '1') return { when: 'soon', on: 'fail', threshold: 1, percent: false, text: 'soon,fail=1' };
  if (text === '2') return { when: 'now', on: 'fail', threshold: 1, percent: false, text: 'now,fail=1' };
  const m = /^(now|soon),(fail|success)=(\d+(?:\.\d+)?)(%?)$/.exec(text);
  const threshold = m === null ? NaN : Number(m[3]);
  if (m === null || !(threshold > 0) || (m[4] === '' && !Number.isInteger(threshold)) || (m[4] === '%' && threshold > 100)) {
    throw new UsageError(`--halt must be never, or now|soon,fail=N|N%|success=N|N% (N > 0), got ${text}`);
  }
  return { when: m[1] as 'now' | 'soon', on: m[2] as 'fail' | 'success', threshold, percent: m[4] === '%', text };
}

/** Percentages of an input of unknown size count only once this many jobs have ended. */
const MIN_ENDED_FOR_PERCENT = 3;

/**
 * Whether the policy is met. A percentage is of all the jobs when their
 * number is known (a regular file, `:::` lists), else of those ended so far.
 */
export function haltReached(p: HaltPolicy, ended: { ok: number; failed: number }, total: number | undefined): boolean {
  const count = p.on === 'fail' ? ended.failed : ended.ok;
  if (!p.percent) return count >= p.threshold;
  if (count === 0) return false;
  const of = total ?? ended.ok + ended.failed;
  if (total === undefined && of < MIN_ENDED_FOR_PERCENT) return false;
  return (100 * count) / of >= p.threshold;
}
