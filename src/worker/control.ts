import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { ChildControl } from '../shared/protocol.js';

/**
 * The worker's side of a run's own control port. The main thread calls
 * spawned() and abort() through comlink; this class turns them into state
 * the run reads, whether they arrive before or after the spawn.
 */
export class ControlChannel {
  #resolveSpawned!: (pid: number) => void;
  #resolveReaped!: () => void;
  readonly #spawned = new Promise<number>((r) => { this.#resolveSpawned = r; });
  readonly #reaped = new Promise<void>((r) => { this.#resolveReaped = r; });
  #onAbort: ((signal?: number) => void) | undefined;
  /** An abort that came before there was a child to signal. */
  pendingAbort: { signal: number | undefined } | undefined;

  constructor(private readonly port: MessagePort | undefined) {
    if (!port) return;
    const api: ChildControl = {
      spawned: () => this.#spawned,
      abort: (signal?: number) => {
        if (this.#onAbort) this.#onAbort(signal);
        else this.pendingAbort ??= { signal };
        return this.#reaped;
      },
    };
    Comlink.expose(api, port);
  }

  /** From now on, aborts go to `handler`. */
  started(pid: number, handler: (signal?: number) => void): void {
    this.#onAbort = handler;
    this.#resolveSpawned(pid);
  }

  /** The run is over (reaped, or never started): release every waiter. */
  finish(): void {
    this.#resolveSpawned(0);
    this.#resolveReaped();
    // Let comlink's replies to the calls just released go out first.
    if (this.port) setImmediate(() => this.port!.close());
  }
}
