import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { RunOutcome } from '../shared/protocol.js';
import { exitedNormally } from '../shared/status.js';

/** How runs ended, as the pool saw them (before any `status` option applies). */
export interface OutcomeCounts {
  /** Exit status 0. */
  readonly ok: number;
  /** A non-zero exit status. */
  readonly exit: number;
  readonly signal: number;
  readonly timeout: number;
  readonly abort: number;
  readonly maxBuffer: number;
  /** Could not be started: not found, not executable, no cwd, a failed step before exec. */
  readonly spawnFailure: number;
  /** Refused or ended by close()/destroy(), or a full queue. */
  readonly pool: number;
  /** Lost with the worker thread that carried them (EWORKER). */
  readonly workerLost: number;
}

/** Milliseconds, from a histogram with microsecond resolution; zeros before the first run. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

type Bucket = keyof OutcomeCounts;

const BY_CODE: Readonly<Record<string, Bucket>> = {
  ETIMEDOUT: 'timeout',
  EABORTED: 'abort',
  EMAXBUFFER: 'maxBuffer',
  EPOOLCLOSED: 'pool',
  EQUEUEFULL: 'pool',
};

function bucket(outcome: RunOutcome): Bucket {
  if (outcome.failure) return BY_CODE[outcome.failure.code] ?? (outcome.pid === 0 ? 'spawnFailure' : 'signal');
  const raw = outcome.rawStatus ?? -1;
  if (raw === 0) return 'ok';
  return raw > 0 && exitedNormally(raw) ? 'exit' : 'signal';
}

function summary(h: RecordableHistogram): LatencySummary {
  if (h.count === 0) return { count: 0, p50: 0, p99: 0, max: 0 };
  return { count: h.count, p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000, max: h.max / 1000 };
}

/** What a pool records of every run it ends: counts by outcome and three latency histograms. */
export class PoolMetrics {
  readonly #counts: Record<Bucket, number> = { ok: 0, exit: 0, signal: 0, timeout: 0, abort: 0, maxBuffer: 0, spawnFailure: 0, pool: 0, workerLost: 0 };
  readonly #queueWait = createHistogram();
  readonly #spawn = createHistogram();
  readonly #run = createHistogram();

  record(outcome: RunOutcome): void {
    this.#counts[bucket(outcome)]++;
    // Histograms take integers >= 1: microseconds.
    const us = (ms: number) => Math.max(1, Math.round(ms * 1000));
    this.#queueWait.record(us(outcome.queueWaitMs));
    if (outcome.pid !== 0) {
      this.#spawn.record(us(outcome.spawnMs));
      this.#run.record(us(outcome.durationMs));
    }
  }

  /** A run the pool refused, or lost before any worker reported on it. */
  recordRefused(why: 'pool' | 'workerLost'): void {
    this.#counts[why]++;
  }

  get completed(): number {
    return this.#counts.ok;
  }

  get failed(): number {
    return Object.values(this.#counts).reduce((a, b) => a + b, 0) - this.#counts.ok;
  }

  outcomes(): OutcomeCounts {
    return { ...this.#counts };
  }

  latency(): { queueWaitMs: LatencySummary; spawnMs: LatencySummary; runMs: LatencySummary } {
    return { queueWaitMs: summary(this.#queueWait), spawnMs: summary(this.#spawn), runMs: summary(this.#run) };
  }
}
