import { performance } from 'node:perf_hooks';

// Each thread's performance.now() counts from that thread's own start; the
// origin getter is not cheap, so it is read once per thread.
const origin = performance.timeOrigin;

/** Milliseconds on a clock that the main thread and the workers read alike. */
export const sharedNow = (): number => origin + performance.now();
