import type { MessagePort } from 'node:worker_threads';
import type { Endpoint } from 'comlink';

/**
 * A run's control port carries two protocols: comlink's RPC (abort,
 * spawned, handshake) and these stream frames for inputPipe / outputPipe /
 * errorPipe. Frames carry a tag comlink never uses, and each side's comlink
 * endpoint is filtered so that it never sees them.
 */
export const FRAME = '__spawnpoolFrame';

/** Bytes one direction of one stream may have in flight, unacknowledged. */
export const STREAM_WINDOW = 1024 * 1024;

export type Frame =
  /** worker → main: child output on fd 1 or 2. */
  | { readonly [FRAME]: 'data'; readonly fd: 1 | 2; readonly chunk: Uint8Array }
  /** worker → main: that output stream has ended (EOF, or the run ended it). */
  | { readonly [FRAME]: 'end'; readonly fd: 1 | 2 }
  /** main → worker: the consumer took this many more bytes of fd 1 or 2. */
  | { readonly [FRAME]: 'credit'; readonly fd: 1 | 2; readonly bytes: number }
  /** main → worker: bytes for the child's stdin. */
  | { readonly [FRAME]: 'stdin'; readonly chunk: Uint8Array }
  /** main → worker: no more stdin. */
  | { readonly [FRAME]: 'stdin-end' }
  /** worker → main: this many stdin bytes reached the kernel pipe. */
  | { readonly [FRAME]: 'stdin-ack'; readonly bytes: number }
  /** worker → main: the child closed its stdin (or the run ended); further input is dropped. */
  | { readonly [FRAME]: 'stdin-closed' };

export function isFrame(data: unknown): data is Frame {
  return typeof data === 'object' && data !== null && FRAME in data;
}

/** Posts a frame, moving the chunk's bytes: a fresh exact-size copy is transferred, never a pooled or shared buffer. */
export function postFrame(port: MessagePort, frame: Frame): void {
  if ('chunk' in frame) {
    const own = new Uint8Array(frame.chunk);
    port.postMessage({ ...frame, chunk: own }, [own.buffer]);
  } else {
    port.postMessage(frame);
  }
}

type Listener = (event: MessageEvent) => void;

/** The port as comlink should see it: every message but the frames. */
export function rpcEndpoint(port: MessagePort): Endpoint {
  const wrapped = new Map<unknown, Listener>();
  // Node's MessagePort is an EventTarget: comlink listens the DOM way.
  const target = port as unknown as { addEventListener(type: string, fn: Listener): void; removeEventListener(type: string, fn: Listener): void };
  return {
    postMessage: (message: unknown, transfer?: Parameters<Endpoint['postMessage']>[1]) => port.postMessage(message, transfer as never),
    addEventListener: (type: string, listener: unknown) => {
      const fn: Listener = (event) => {
        if (isFrame(event.data)) return;
        if (typeof listener === 'function') (listener as Listener)(event);
        else (listener as { handleEvent: Listener }).handleEvent(event);
      };
      wrapped.set(listener, fn);
      target.addEventListener(type, fn);
    },
    removeEventListener: (type: string, listener: unknown) => {
      const fn = wrapped.get(listener);
      if (fn === undefined) return;
      wrapped.delete(listener);
      target.removeEventListener(type, fn);
    },
  };
}
