/** What the progress line shows. */
export interface Counts {
  done: number;
  failed: number;
  running: number;
  skipped: number;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * A live line on a terminal: done, failed, running, rate, ETA. Redrawn a few
 * times a second, never keeping the process alive.
 */
export class Progress {
  readonly #started = performance.now();
  readonly #timer: NodeJS.Timeout | undefined;
  /** Jobs in the input, when known (a regular file is counted in the background). */
  total: number | undefined;

  constructor(private readonly counts: Counts, private readonly out: NodeJS.WriteStream, live: boolean) {
    if (live) this.#timer = setInterval(() => this.draw(), 200).unref();
  }

  line(): string {
    const { done, failed, running, skipped } = this.counts;
    const elapsed = (performance.now() - this.#started) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const left = this.total === undefined ? undefined : Math.max(0, this.total - done - skipped);
    const eta = left === undefined || rate === 0 ? '?' : duration(left / rate);
    return `done ${done}  failed ${failed}  running ${running}  ${rate.toFixed(1)}/s  ETA ${eta}`;
  }

  draw(): void {
    this.out.write(`\r\x1b[K${this.line()}`);
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.out.write('\r\x1b[K');
  }
}
