// A soak of mixed runs on one pool: node test/faults/soak.mjs N [engine].
// Prints one JSON line: RSS, descriptors and threads after the first 10 000
// and at the end, and how the runs ended. Used by
// soak.test.js (a small N) and bench/soak.mjs (100 000).
import { readdirSync } from 'node:fs';
import { Command, CommandError, SpawnPool } from '../../dist/index.js';

const n = Number(process.argv[2] ?? 20_000);
const engine = process.argv[3] ?? 'native';

const pool = new SpawnPool({ engine });
const kinds = [
  () => new Command('/bin/true').run({ pool }),
  () => new Command('/bin/echo', 'soak').captureOutput().run({ pool }),
  () => new Command('/bin/cat').inputBuffer('x'.repeat(4096)).captureOutput().captureError().run({ pool }),
  () => new Command('/bin/false').run({ pool }),
  () => new Command('/no/such/program').run({ pool }),
  () => new Command('/bin/sh', '-c', 'echo e >&2; exit 3').captureError().run({ pool }),
  async () => (await new Command('/bin/sleep', '5').runAsync({ pool })).abort(),
  () => new Command('/bin/sleep', '5').run({ pool, timeoutMs: 1 }),
];
const ended = {};
// No forced GC: a full collection on demand grows RSS by itself (fresh
// pages to evacuate into), which would hide what the runs do.
const snapshot = () => {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, fds: readdirSync('/proc/self/fd').length, threads: readdirSync('/proc/self/task').length };
};

/** `count` runs, 64 at a time, the kinds in turn from `from`. */
async function runs(from, count) {
  let next = from;
  const lane = async () => {
    while (next < from + count) {
      const i = next++;
      let code = 'ok';
      try {
        await kinds[process.env.SOAK_KIND === undefined ? i % kinds.length : Number(process.env.SOAK_KIND)]();
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
        code = err.code;
      }
      ended[code] = (ended[code] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 64 }, lane));
  // A moment for the workers to close what the last runs held.
  await new Promise((r) => setTimeout(r, 200));
}

// The reference point: after the first 10 000 runs (or the first half of a shorter soak).
const tenth = Math.min(10_000, Math.floor(n / 2));
await runs(0, tenth);
const first = snapshot();
await runs(tenth, n - tenth);
const last = snapshot();
await pool.destroy();
console.log(JSON.stringify({ n, engine, first, last, ended }));
