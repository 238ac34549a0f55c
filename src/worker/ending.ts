import type { WireFailure } from '../shared/protocol.js';
import type { SpawnedChild } from './engine.js';

const SIGKILL = 9;

/**
 * The one way a run is cut short, whatever asked (timeout, abort, maxBuffer):
 * killSignal, then SIGKILL after the grace period; the run is over only when
 * the child is reaped. The first reason wins.
 */
export class Ending {
  #reason: WireFailure | undefined;
  #grace: NodeJS.Timeout | undefined;
  #reaped = false;

  constructor(
    private readonly child: Pick<SpawnedChild, 'kill'>,
    private readonly killSignal: number,
    private readonly graceMs: number,
  ) {}

  get reason(): WireFailure | undefined {
    return this.#reason;
  }

  request(code: string, message: string, signal = this.killSignal): void {
    if (this.#reason) return;
    this.#reason = { code, message };
    // Reaped already (a daemon's intermediate): only the reason is left to record.
    if (this.#reaped) return;
    this.child.kill(signal);
    if (signal !== SIGKILL) {
      this.#grace = setTimeout(() => this.child.kill(SIGKILL), this.graceMs);
    }
  }

  /** This thread is exiting: no timer will fire again, so SIGKILL now. */
  killNow(): void {
    this.child.kill(SIGKILL);
  }

  /** The child is reaped: no more signals. */
  settle(): void {
    this.#reaped = true;
    clearTimeout(this.#grace);
  }
}
