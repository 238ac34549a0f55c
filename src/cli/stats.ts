import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** A run-time distribution in ms: exact mean and σ (Welford), percentiles from an HdrHistogram. */
export interface Summary {
  readonly count: number;
  readonly mean: number;
  readonly stddev: number;
  readonly min: number;
  readonly max: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
}

/** Collects durations in ms. Node's histogram is HdrHistogram (3 significant digits), in ns. */
export class Durations {
  readonly #h: RecordableHistogram = createHistogram();
  #n = 0;
  #mean = 0;
  #m2 = 0;
  #min = Infinity;
  #max = -Infinity;

  record(ms: number): void {
    this.#h.record(Math.max(1, Math.round(ms * 1e6)));
    const delta = ms - this.#mean;
    this.#mean += delta / ++this.#n;
    this.#m2 += delta * (ms - this.#mean);
    this.#min = Math.min(this.#min, ms);
    this.#max = Math.max(this.#max, ms);
  }

  summary(): Summary {
    const p = (q: number) => (this.#n === 0 ? NaN : this.#h.percentile(q) / 1e6);
    return {
      count: this.#n,
      mean: this.#n === 0 ? NaN : this.#mean,
      stddev: this.#n < 2 ? 0 : Math.sqrt(this.#m2 / (this.#n - 1)),
      min: this.#n === 0 ? NaN : this.#min,
      max: this.#n === 0 ? NaN : this.#max,
      p50: p(50), p90: p(90), p99: p(99), p999: p(99.9),
    };
  }
}

/** How many times slower `b` is than `a`, with σ propagated from both (as hyperfine does). */
export function ratio(a: Summary, b: Summary): { ratio: number; stddev: number } {
  const r = b.mean / a.mean;
  return { ratio: r, stddev: r * Math.sqrt((a.stddev / a.mean) ** 2 + (b.stddev / b.mean) ** 2) };
}
