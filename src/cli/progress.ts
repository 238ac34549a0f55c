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

/** `--eta`: counts, rate and the time left; `--bar`: a bar and the share done as well. */
export type ProgressStyle = 'eta' | 'bar';

const BAR_WIDTH = 30;

/**
 * A live line on a terminal: done, failed, running, rate, ETA. Redrawn a few
 * times a second, never keeping the process alive; cleared before anything
 * else is written to the terminal, so it never mixes into job output.
 */
export class Progress {
  readonly #started = performance.now();
  readonly #timer: NodeJS.Timeout | undefined;
  #shown = false;
  /** Jobs in the input, when known (a regular file is counted in the background). */
  total: number | undefined;
  /** Appended to the line (with --queue: the workers seen). */
  note: string | undefined;

  constructor(private readonly counts: Counts, private readonly out: NodeJS.WritableStream, private readonly style: ProgressStyle | undefined) {
    if (style !== undefined) this.#timer = setInterval(() => this.draw(), 200).unref();
  }

  line(): string {
    const { done, failed, running, skipped } = this.counts;
    const elapsed = (performance.now() - this.#started) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const left = this.total === undefined ? undefined : Math.max(0, this.total - done - skipped);
    const eta = left === undefined || rate === 0 ? '?' : duration(left / rate);
    const counts = `done ${done}  failed ${failed}  running ${running}  ${rate.toFixed(1)}/s  ETA ${eta}${this.note === undefined ? '' : `  ${this.note}`}`;
    if (this.style !== 'bar') return counts;
    if (this.total === undefined) return `[${'?'.repeat(BAR_WIDTH)}] ${done + skipped}/?  ${counts}`;
    const share = this.total === 0 ? 1 : Math.min(1, (done + skipped) / this.total);
    const filled = Math.round(share * BAR_WIDTH);
    return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${(share * 100).toFixed(0)}% ${done + skipped}/${this.total}  ${counts}`;
  }

  draw(): void {
    this.out.write(`\r\x1b[K${this.line()}`);
    this.#shown = true;
  }

  /** Takes the line off the terminal until the next redraw. */
  clear(): void {
    if (!this.#shown) return;
    this.out.write('\r\x1b[K');
    this.#shown = false;
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.clear();
  }
}
