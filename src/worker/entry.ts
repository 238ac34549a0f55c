import { workerData } from 'piscina';
import { SAME_ENV, unstarted, type LaneRequest, type RunOutcome, type RunTask, type WireFailure } from '../shared/protocol.js';
import type { WorkerConfig } from '../shared/pool-config.js';
import type { Engine } from './engine.js';
import { nativeEngine } from './engines/native.js';
import { nodeEngine } from './engines/node.js';
import { Lane } from './lane.js';
import { PlainRuns } from './plain-runs.js';
import {
  abortRun, endAll, fitsFastPath, killAllNow, runChild, runFastDirect, runsWithChild, type Completions, type WorkerTask,
} from './run-child.js';
import { decodeTask, type WireTask } from '../shared/wire.js';

/**
 * The pool's worker: runs many children at once. Runs arrive in batches on
 * the lane, not as piscina tasks: piscina starts, replaces and stops this
 * thread, and its per-task path (a message, a clone and a promise per run,
 * both ways) cost as much as spawning the child.
 */

const config = workerData as WorkerConfig;
// The main thread has chosen, and checked that the addon loads.
const engine: Engine = config.engine === 'native' ? nativeEngine : nodeEngine;

/** The environment block the lane carried last, for runs that say SAME_ENV. */
let lastEnv: readonly string[] | Uint8Array = [];

const lane = new Lane(onRequest);

/**
 * At most `limit` runs of this lane at once (the pool's lane limit; none
 * by default). The rest wait here, in order, so that one starts the moment
 * another ends, without a round trip to the main thread.
 */
let limit = Infinity;
let running = 0;
const waiting: WorkerTask[] = [];

/** Outcomes of started runs: each frees its place for the next waiting one. */
const started: Completions = {
  complete(id, outcome) {
    running--;
    lane.complete(id, outcome);
    startWaiting();
  },
  spawned: (id, pid) => lane.spawned(id, pid),
};

const plain = new PlainRuns(engine, started);

function onRequest(request: LaneRequest): void {
  switch (request.t) {
    case 'destroy':
      endAll();
      plain.endAll();
      endWaiting({ code: 'EPOOLCLOSED', message: 'the pool was destroyed' });
      return;
    case 'abort': {
      const at = waiting.findIndex((t) => t.id === request.id);
      if (at < 0) {
        abortRun(request.id, request.signal);
        return;
      }
      waiting.splice(at, 1);
      lane.complete(request.id, unstarted({ code: 'EABORTED', message: 'aborted before it was spawned' }));
      return;
    }
    case 'limit':
      limit = request.running;
      startWaiting();
      return;
    case 'runs':
      for (const wire of request.runs) {
        if (running < limit && waiting.length === 0 && plain.fits(wire)) {
          // A plain run inherits the environment: SAME_ENV or a new block.
          if (wire[3] !== SAME_ENV) lastEnv = wire[3];
          running++;
          plain.start(wire, lastEnv);
          continue;
        }
        // Decoded on arrival: SAME_ENV means the block the lane carried last.
        const task: WorkerTask = decodeTask(wire, resolveEnv);
        if (task.spec.env === null) lastEnv = task.env;
        if (running < limit && waiting.length === 0) start(task);
        else waiting.push(task);
      }
  }
}

function startWaiting(): void {
  while (running < limit && waiting.length > 0) start(waiting.shift()!);
}

function endWaiting(failure: WireFailure): void {
  for (const task of waiting.splice(0)) lane.complete(task.id, unstarted(failure));
}

const resolveEnv = (env: RunTask['env']) => (env === SAME_ENV ? lastEnv : env);

function start(task: WorkerTask): void {
  running++;
  if (task.port === undefined && fitsFastPath(task.spec, engine)) {
    runFastDirect(task, engine, started);
    return;
  }
  runChild(task, engine, started).then(
    (outcome) => started.complete(task.id, outcome),
    // runChild reports every failure of the run in its outcome; this would be a bug of ours.
    (err: unknown) => started.complete(task.id, internalFailure(err)),
  );
}

function internalFailure(err: unknown): RunOutcome {
  return unstarted({ code: 'ESPAWN', message: `internal error in the worker: ${err instanceof Error ? err.message : String(err)}` });
}

/**
 * An uncaught error would end the thread at once, and a child of a thread
 * whose loop is gone is never reaped (child_process reaps on the loop that
 * spawned it). So the thread dies in order: no new child, SIGKILL to every
 * child, their reaping awaited (bounded), then the pool is told which runs
 * had a child, and only then does the thread exit.
 */
let dying = false;
const withChildNow = () => [...runsWithChild(), ...plain.laneIds()];
const REAP_WAIT_MS = 2000;
process.on('uncaughtException', (err) => {
  if (dying) return;
  dying = true;
  const reason = err instanceof Error ? err.message : String(err);
  const withChild = withChildNow();
  lane.silence();
  endAll();
  plain.endAll();
  const deadline = Date.now() + REAP_WAIT_MS;
  const wait = () => {
    if (withChildNow().length > 0 && Date.now() < deadline) {
      setTimeout(wait, 2);
      return;
    }
    lane.lost(reason, withChild);
    process.exit(1);
  };
  wait();
});
// Any other end of the thread (process.exit, out of memory): kill what is left.
process.on('exit', () => {
  if (dying) return;
  const withChild = withChildNow();
  killAllNow();
  plain.killAllNow();
  lane.lost('the thread exited', withChild);
});

/** Piscina wants a task handler; the pool never submits tasks. */
export default function unused(): never {
  throw new Error('spawnpool workers take their runs on their lane');
}
