import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { ChildControl, WireFailure } from '../shared/protocol.js';
import type { HelperChannel } from './engine.js';
import { isFrame, postFrame, rpcEndpoint, type Frame } from '../shared/stream-frames.js';

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
  #helper: HelperChannel | undefined;
  #notifyEarly = false;
  /** An abort that came before there was a child to signal. */
  pendingAbort: { signal: number | undefined } | undefined;
  /** Stream frames from the main thread, held until the run has its pipes. */
  #frames: Frame[] | ((frame: Frame) => void) = [];

  /** `onSpawned`: a run without a port that asked for its pid gets it on the lane. */
  constructor(private readonly port: MessagePort | undefined, private readonly onSpawned?: (pid: number) => void) {
    if (!port) return;
    const api: ChildControl = {
      spawned: () => this.#spawned,
      abort: (signal?: number) => {
        this.abort(signal);
        return this.#reaped;
      },
      handshakeWait: async (): Promise<WireFailure | undefined> => {
        const pid = await this.#spawned;
        if (pid === 0) return { code: 'ESPAWN', message: 'the child was not started' };
        if (!this.#helper) return { code: 'EINVAL', message: 'the child does not wait for a handshake' };
        return this.#helper.ready;
      },
      handshakeNotify: async () => {
        if (this.#helper) this.#helper.notify();
        else this.#notifyEarly = true;
      },
    };
    Comlink.expose(api, rpcEndpoint(port));
    port.on('message', (data: unknown) => {
      if (!isFrame(data)) return;
      if (typeof this.#frames === 'function') this.#frames(data);
      else this.#frames.push(data);
    });
  }

  /** Ends the run's child, or, before there is one, keeps the abort for the spawn to see. */
  abort(signal: number | undefined): void {
    if (this.#onAbort) this.#onAbort(signal);
    else this.pendingAbort ??= { signal };
  }

  /** From now on, stream frames go to `handler` (the held ones first). */
  onFrames(handler: (frame: Frame) => void): void {
    const held = this.#frames;
    this.#frames = handler;
    if (Array.isArray(held)) for (const frame of held) handler(frame);
  }

  send(frame: Frame): void {
    if (this.port) postFrame(this.port, frame);
  }

  /** From now on, aborts go to `handler`. */
  started(pid: number, handler: (signal?: number) => void, helper?: HelperChannel): void {
    this.#onAbort = handler;
    this.#helper = helper;
    if (this.#notifyEarly) helper?.notify();
    this.#resolveSpawned(pid);
    this.onSpawned?.(pid);
  }

  /** The run is over (reaped, or never started): release every waiter. */
  finish(): void {
    this.#resolveSpawned(0);
    this.#resolveReaped();
    // Let comlink's replies to the calls just released go out first.
    if (this.port) setImmediate(() => this.port!.close());
  }
}
