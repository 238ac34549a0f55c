import { haltReached, type HaltPolicy } from './halt.js';
import { skipLogged } from './joblog.js';
import type { Counts } from './progress.js';
import { Failures } from './summary.js';

/**
 * What a batch has come to, for the progress line, --halt, the summary and
 * the exit status: the same for a local run and a queued one.
 */
export class Tally {
  readonly counts: Counts = { done: 0, failed: 0, running: 0, skipped: 0 };
  readonly failures = new Failures();
  /** Skipped as logged, but logged as failed: the batch has not succeeded. */
  #skippedFailures = 0;

  /** A job the joblog shows (`before`: whether it succeeded): true when it is skipped. */
  skips(before: boolean | undefined, resume: 'all' | 'failed' | undefined): boolean {
    if (!skipLogged(before, resume)) return false;
    this.counts.skipped++;
    if (!before) this.#skippedFailures++;
    return true;
  }

  /** A job that ended (or a line that is none: `what` names it); `index`, its place in the input. */
  ended(index: number, what: string, ok: boolean, code: string | null, message: string | undefined): void {
    this.counts.done++;
    if (ok) return;
    this.counts.failed++;
    this.failures.add(index, what, code ?? 'EFAILED', message ?? '');
  }

  /** A line that is no job, or a job whose command cannot be built: failed; what to say of it and write to the results. */
  badLine(index: number, line: number, id: string | null, reason: string): { readonly say: string; readonly result: Record<string, unknown> } {
    const what = id === null ? `line ${line}` : `job ${id}`;
    this.ended(index, what, false, 'EBADLINE', reason);
    return { say: `${what}: ${reason}`, result: { id, line, code: 'EBADLINE', message: reason } };
  }

  /** When the policy is met: what to say (`then`: what happens to the running jobs). */
  haltMessage(halt: HaltPolicy | undefined, total: number | undefined, then: string): string | undefined {
    const { done, failed } = this.counts;
    if (halt === undefined || !haltReached(halt, { ok: done - failed, failed }, total)) return undefined;
    const what = halt.on === 'fail' ? `${failed} failed` : `${done - failed} succeeded`;
    return `--halt ${halt.text}: ${what}; no new jobs${halt.when === 'now' ? then : ''}`;
  }

  /** The summary line, then the failures listed, each line for `write`. */
  summary(seconds: number, extra: string, ended: string): string[] {
    const { done, failed, skipped } = this.counts;
    return [
      `${done} jobs: ${done - failed} ok, ${failed} failed${skipped ? `, ${skipped} skipped (logged as finished)` : ''}${extra}` +
        ` in ${seconds.toFixed(2)} s (${(done / Math.max(seconds, 1e-9)).toFixed(1)}/s)${ended}`,
      ...this.failures.lines().map((line) => `  ${line}`),
    ];
  }

  /** 0 when every job succeeded, skipped ones included; else 1. */
  status(): 0 | 1 {
    return this.counts.failed === 0 && this.#skippedFailures === 0 ? 0 : 1;
  }
}
