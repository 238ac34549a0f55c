import { availableParallelism } from 'node:os';
import { MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { CommandError } from '../shared/errors.js';
import { LANE_KEY, unstarted, type RunOutcome } from '../shared/protocol.js';
import type { WorkerConfig } from '../shared/pool-config.js';
import { WorkerLane, type LaneWaiter, type TaskDraft } from './lane.js';
import { chooseEngine } from './engine-choice.js';
import { PoolMetrics, type LatencySummary, type OutcomeCounts } from './pool-metrics.js';

export interface SpawnPoolOptions {
  /** Worker threads; default: the number of cores. */
  threads?: number;
  /** Runs that may wait for a worker; past it, run() rejects EQUEUEFULL. */
  maxQueue?: number;
  /** An idle worker above the minimum stops after this long. */
  idleTimeoutMs?: number;
  engine?: 'native' | 'node';
}

export interface PoolStats {
  readonly threads: number;
  /** Runs a worker is carrying out now. */
  readonly running: number;
  /** Runs waiting for a worker. */
  readonly queued: number;
  /** Runs whose child exited with status 0. */
  readonly completed: number;
  /** All other ended runs: non-zero exit, signal, timeout, abort, not started. */
  readonly failed: number;
  /** The ended runs by how they ended. */
  readonly outcomes: OutcomeCounts;
  /** From run() to a worker taking the run. */
  readonly queueWaitMs: LatencySummary;
  /** From a worker taking the run to the child running. */
  readonly spawnMs: LatencySummary;
  /** From a worker taking the run to the child reaped and its output in. */
  readonly runMs: LatencySummary;
}

/**
 * One 'abort' listener per AbortSignal, however many runs share it (a
 * batch gives all its runs one): a listener per run made Node warn of a
 * leak past ten, and each add and remove walks the signal's listener list.
 */
const aborters = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` when `signal` aborts; returns the way to stop that. */
function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let runs = aborters.get(signal);
  if (runs === undefined) {
    const set = (runs = new Set());
    aborters.set(signal, set);
    signal.addEventListener('abort', () => {
      for (const abort of [...set]) abort();
      set.clear();
    }, { once: true });
  }
  const set = runs;
  set.add(fn);
  return () => set.delete(fn);
}

/** Children each worker carries at once before runs queue. */
const RUNS_PER_THREAD = 256;

/** @internal run.ts submits through this, keeping it off the public surface. */
export const submit = Symbol('spawnpool.submit');

/**
 * @internal An option for the batch CLI: each worker starts at most this
 * many children at once and holds the runs beyond, starting the next the
 * moment one ends, without a round trip to the main thread.
 */
export const laneLimit = Symbol('spawnpool.laneLimit');

/** A piscina pool and the lanes of its threads; `broken` once a thread of it failed to start. */
interface Carrier {
  readonly piscina: Piscina;
  broken: boolean;
  readonly lanes: Set<WorkerLane>;
}

interface Queued {
  readonly draft: TaskDraft;
  readonly waiter: PendingRun;
}

/**
 * @internal What runAsync() keeps of a run that has no port of its own: a
 * way to abort it, and its pid once it runs. Both travel on the lane.
 */
export class RunControl {
  #abort: ((signal: number | undefined) => void) | undefined;
  #early: { signal: number | undefined } | undefined;

  constructor(readonly onSpawned: (pid: number) => void) {}

  abort(signal: number | undefined): void {
    if (this.#abort) this.#abort(signal);
    else this.#early ??= { signal };
  }

  /** The pool's way to abort the run; an abort asked for before it takes effect now. */
  bind(abort: (signal: number | undefined) => void): void {
    this.#abort = abort;
    if (this.#early) abort(this.#early.signal);
  }
}

/** A run handed to a lane or queued: how its promise settles, and where it went. */
class PendingRun implements LaneWaiter {
  /** Where it was sent, for an abort; undefined while queued. */
  lane: WorkerLane | undefined;
  id = 0;
  /** Removes the AbortSignal's listener, if it had one. */
  detach: (() => void) | undefined;
  /** runAsync(): told the pid once the run has a child. */
  onSpawned: ((pid: number) => void) | undefined;

  constructor(
    private readonly ended: (outcome: RunOutcome | 'workerLost') => void,
    private readonly onOutcome: (outcome: RunOutcome) => void,
    private readonly onError: (err: CommandError) => void,
    private readonly command: () => string,
  ) {}

  sendOn(lane: WorkerLane, draft: TaskDraft): void {
    this.lane = lane;
    this.id = lane.send(draft, this);
  }

  spawned(pid: number): void {
    this.onSpawned?.(pid);
  }

  resolve(outcome: RunOutcome): void {
    this.detach?.();
    this.ended(outcome);
    this.onOutcome(outcome);
  }

  lost(reason: string, hadChild: boolean): void {
    this.detach?.();
    this.ended('workerLost');
    const command = this.command();
    this.onError(new CommandError('EWORKER', `${command}: the worker thread running it died (${reason}); ` +
      (hadChild ? 'its child was killed' : 'it had no child running'), { command }));
  }
}

/**
 * Worker threads that spawn, feed, capture and reap children, many per
 * thread. An idle pool holds no reference on the event loop.
 *
 * Piscina starts the threads, replaces one that dies and stops them; the
 * runs themselves travel on each worker's lane (lane.ts), in batches, not
 * as piscina tasks.
 */
export class SpawnPool {
  /**
   * Piscina pools carrying the threads: one, unless threads failed to
   * start; then another carries the missing ones (piscina itself never
   * starts a thread again once one failed at startup).
   */
  readonly #piscinas: Carrier[] = [];
  /** A thread failed to start: each run checks that all are there (piscina replaces the others' dead threads itself). */
  #degraded = false;
  readonly #piscinaOptions: ConstructorParameters<typeof Piscina>[0];
  readonly #threads: number;
  readonly #maxQueue: number;
  #state: 'open' | 'closing' | 'destroyed' = 'open';
  readonly #lanes: WorkerLane[] = [];
  readonly #queue: Queued[] = [];
  /** Runs handed to a lane or queued, until they settle. */
  #pending = 0;
  /** close() and destroy() waiting for #pending to reach 0. */
  readonly #drained: (() => void)[] = [];
  /** Referenced while runs wait here: the threads are not (an idle pool must let the process exit), and a starting thread has no lane yet. */
  #keepAlive: NodeJS.Timeout | undefined;
  readonly #metrics = new PoolMetrics();
  readonly #laneLimit: number | undefined;

  constructor(opts: SpawnPoolOptions = {}) {
    if (opts === null || typeof opts !== 'object') throw new CommandError('EINVAL', 'SpawnPool: options must be an object', { command: '' });
    this.#threads = checkCount('threads', opts.threads) ?? availableParallelism();
    this.#maxQueue = checkCount('maxQueue', opts.maxQueue, 0) ?? Infinity;
    this.#laneLimit = (opts as { readonly [laneLimit]?: number })[laneLimit];
    const engine = chooseEngine(opts.engine);
    const workerData: WorkerConfig = { engine };
    this.#piscinaOptions = {
      filename: new URL('./worker.js', import.meta.url).href,
      idleTimeout: checkCount('idleTimeoutMs', opts.idleTimeoutMs, 0) ?? 30_000,
      // Workers run async I/O; Atomics.wait would block it.
      atomics: 'disabled',
      workerData,
    };
    this.#startThreads(this.#threads);
  }

  #startThreads(count: number): void {
    const carrier: Carrier = {
      piscina: new Piscina({ ...this.#piscinaOptions, minThreads: count, maxThreads: count }),
      broken: false,
      lanes: new Set(),
    };
    this.#piscinas.push(carrier);
    carrier.piscina.on('message', (message: unknown) => {
      const port = (message as Record<string, unknown> | null)?.[LANE_KEY];
      if (port instanceof MessagePort) this.#attach(port, carrier);
    });
    // A thread that dies is reported to its runs through its lane; piscina
    // also emits it here, and an 'error' nobody listens to would kill the host.
    carrier.piscina.on('error', (err: unknown) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ERR_WORKER_INIT_FAILED') this.#startFailed(carrier, err as Error);
    });
  }

  /** Threads running or starting. */
  #alive(): number {
    let n = 0;
    for (const c of this.#piscinas) n += c.broken ? c.lanes.size : c.piscina.threads.length;
    return n;
  }

  /**
   * A thread could not start (no descriptor, no memory, no thread). Piscina
   * starts none again in that pool, so it is kept only for the threads it
   * has running; the runs that have no thread to go to fail with the errno;
   * the next run starts the missing threads again.
   */
  #startFailed(carrier: Carrier, err: Error): void {
    carrier.broken = true;
    this.#degraded = true;
    const at = this.#piscinas.indexOf(carrier);
    if (carrier.lanes.size === 0 && at >= 0) {
      this.#piscinas.splice(at, 1);
      carrier.piscina.destroy().catch(() => undefined);
    }
    if (this.#alive() > 0) return;
    // Node puts the errno name only in this error's message ("Worker initialization failure: EMFILE").
    const code = /\b(E[A-Z0-9]+)\b/.exec(err.message)?.[1] ?? 'EAGAIN';
    const failure = { code, message: `cannot start a worker thread: ${code}` };
    for (const { waiter } of this.#queue.splice(0)) waiter.resolve(unstarted(failure));
    this.#dispatch();
  }

  /** Starts again the threads that failed to start or died unreplaced, once a run needs them. */
  #restartMissing(): void {
    const alive = this.#alive();
    if (alive < this.#threads && this.#state === 'open') this.#startThreads(this.#threads - alive);
    this.#degraded = this.#piscinas.some((c) => c.broken);
  }

  #attach(port: MessagePort, carrier: Carrier): void {
    const lane = new WorkerLane(port, () => this.#dispatch(), (dead) => {
      this.#lanes.splice(this.#lanes.indexOf(dead), 1);
      carrier.lanes.delete(dead);
    });
    this.#lanes.push(lane);
    carrier.lanes.add(lane);
    if (this.#laneLimit !== undefined) lane.limit(this.#laneLimit);
    if (this.#state === 'destroyed') lane.destroy();
    this.#dispatch();
  }

  /**
   * @internal `signal`: run()'s AbortSignal; `control`: runAsync()'s, for
   * a run without a port of its own. A queued run they abort ends here; a
   * sent one is ended by its worker, told on the lane.
   */
  [submit](draft: TaskDraft, command: () => string, signal?: AbortSignal, control?: RunControl): Promise<RunOutcome> {
    if (this.#state !== 'open') {
      this.#metrics.recordRefused('pool');
      return Promise.reject(new CommandError('EPOOLCLOSED', `Cannot run ${command()}: the pool is ${this.#state === 'closing' ? 'closed' : 'destroyed'}`, { command: command() }));
    }
    // Runs that fill the threads' capacity never count as queued, even
    // while the threads are still starting.
    if (this.#queue.length >= this.#maxQueue + Math.max(0, this.#threads * RUNS_PER_THREAD - this.#running())) {
      this.#metrics.recordRefused('pool');
      return Promise.reject(new CommandError('EQUEUEFULL', `Cannot run ${command()}: the pool's queue is full`, { command: command() }));
    }
    if (this.#degraded) this.#restartMissing();
    return new Promise<RunOutcome>((resolve, reject) => {
      this.#pending++;
      const waiter = new PendingRun(this.#ended, resolve, reject, command);
      const lane = this.#freeLane();
      let queued: Queued | undefined;
      // Told before it crosses: the worker then keeps a way to reach it.
      if (signal || control) draft.abortable = true;
      if (control) {
        draft.notifySpawn = true;
        waiter.onSpawned = control.onSpawned;
      }
      if (lane && this.#queue.length === 0) waiter.sendOn(lane, draft);
      else this.#enqueue((queued = { draft, waiter }));
      if (signal) waiter.detach = onAbort(signal, () => this.#abort(waiter, queued, undefined));
      control?.bind((killWith) => this.#abort(waiter, queued, killWith));
    });
  }

  #abort(waiter: PendingRun, queued: Queued | undefined, signal: number | undefined): void {
    const at = queued === undefined ? -1 : this.#queue.indexOf(queued);
    if (at >= 0) {
      this.#queue.splice(at, 1);
      waiter.resolve(unstarted({ code: 'EABORTED', message: 'aborted before it was spawned' }));
    } else {
      waiter.lane?.abort(waiter.id, signal);
    }
  }

  /** Every run's end, once: its metrics, and close()/destroy() released when none is left. */
  readonly #ended = (outcome: RunOutcome | 'workerLost'): void => {
    if (outcome === 'workerLost') this.#metrics.recordRefused('workerLost');
    else this.#metrics.record(outcome);
    if (--this.#pending === 0) for (const release of this.#drained.splice(0)) release();
  };

  #running(): number {
    let n = 0;
    for (const lane of this.#lanes) n += lane.load;
    return n;
  }

  /** The least loaded lane with room, if any. */
  #freeLane(): WorkerLane | undefined {
    let best: WorkerLane | undefined;
    for (const lane of this.#lanes) {
      if (lane.load < RUNS_PER_THREAD && (!best || lane.load < best.load)) best = lane;
    }
    return best;
  }

  #enqueue(queued: Queued): void {
    this.#queue.push(queued);
    this.#keepAlive ??= setInterval(() => undefined, 0x7fffffff);
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const lane = this.#freeLane();
      if (!lane) return;
      const { draft, waiter } = this.#queue.shift()!;
      waiter.sendOn(lane, draft);
    }
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }

  stats(): PoolStats {
    return {
      threads: this.#alive(),
      running: this.#running(),
      queued: this.#queue.length,
      completed: this.#metrics.completed,
      failed: this.#metrics.failed,
      outcomes: this.#metrics.outcomes(),
      ...this.#metrics.latency(),
    };
  }

  #settledAll(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** Finish what runs and what is queued, refuse new work, stop the workers. */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    await this.#settledAll();
    await Promise.all(this.#piscinas.map((c) => c.piscina.close()));
  }

  /** Kill every child (SIGKILL), reap them, stop the workers. */
  async destroy(): Promise<void> {
    if (this.#state === 'destroyed') return;
    this.#state = 'destroyed';
    for (const { waiter } of this.#queue.splice(0)) waiter.resolve(unstarted({ code: 'EPOOLCLOSED', message: 'the pool was destroyed' }));
    this.#dispatch();
    for (const lane of this.#lanes) lane.destroy();
    // Runs end once their children are reaped; only then stop the threads
    // (terminating a worker earlier would orphan its children).
    await this.#settledAll();
    await Promise.all(this.#piscinas.map((c) => c.piscina.close({ force: true })));
  }
}

function checkCount(name: string, value: unknown, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new CommandError('EINVAL', `SpawnPool: ${name} must be an integer >= ${min}, got ${String(value)}`, { command: '' });
  }
  return value;
}
