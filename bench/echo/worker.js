// Stands in for dist/worker.js in bench/main-thread.mjs: a lane that answers
// every run at once as if /bin/true had exited 0, and spawns nothing. What
// the main thread then spends per run is spawnpool's own main-thread cost.
import { MessageChannel, parentPort } from 'node:worker_threads';

const FIELDS = 6;   // OUTCOME_FIELDS of src/shared/protocol.ts
const LANE_KEY = 'spawnpoolLane';

const { port1, port2 } = new MessageChannel();
let pid = 1000;
port1.on('message', (request) => {
  if (request.t !== 'runs') return;
  const n = request.runs.length;
  const numbers = new Float64Array(n * FIELDS);
  for (let i = 0; i < n; i++) {
    // [id, pid, rawStatus, durationMs, queueWaitMs, spawnMs]; a run is a
    // tuple led by its id (builds before it: an object with an id).
    const run = request.runs[i];
    numbers.set([Array.isArray(run) ? run[0] : run.id, pid++, 0, 0.5, 0.01, 0.1], i * FIELDS);
  }
  port1.postMessage({ t: 'done', numbers, extras: new Array(n).fill(0), spawned: [] }, [numbers.buffer]);
});
parentPort.postMessage({ [LANE_KEY]: port2 }, [port2]);

export default function unused() {
  throw new Error('runs arrive on the lane');
}
