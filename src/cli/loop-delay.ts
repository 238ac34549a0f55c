import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';

const TICK_MS = 1;

/** The main loop's delay over a stretch: p99 and the longest stall, ms. */
export interface LoopDelayReport {
  readonly p99: number;
  readonly max: number;
  /** The longest time the loop could not run a timer, the one still open at stop() included. */
  readonly stall: number;
  readonly samples: number;
}

/**
 * A 1 ms interval timer whose every gap, less the interval, is a delay
 * sample. monitorEventLoopDelay gives a loop blocked for the whole run no
 * sample at all; here the gap still open at stop() counts too, so a blocked
 * loop reports as blocked.
 */
export class LoopDelayMonitor {
  readonly #h: RecordableHistogram = createHistogram();
  #timer: NodeJS.Timeout | undefined;
  #last = 0;

  start(): void {
    this.#h.reset();
    this.#last = performance.now();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  #tick(): void {
    const now = performance.now();
    this.#h.record(Math.max(1, Math.round((now - this.#last - TICK_MS) * 1e6)));
    this.#last = now;
  }

  stop(): LoopDelayReport {
    clearInterval(this.#timer);
    this.#tick();
    const ms = (ns: number) => ns / 1e6;
    return { p99: ms(this.#h.percentile(99)), max: ms(this.#h.max), stall: ms(this.#h.max) + TICK_MS, samples: this.#h.count };
  }
}
