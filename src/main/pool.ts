import { availableParallelism } from 'node:os';
import { BroadcastChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { CommandError } from '../shared/errors.js';
import type { RunOutcome, RunTask } from '../shared/protocol.js';
import { DESTROY_MESSAGE, type WorkerConfig } from '../shared/pool-config.js';
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

/** Children each worker carries at once before runs queue. */
const RUNS_PER_THREAD = 256;

let poolSerial = 0;

/** @internal run.ts submits through this, keeping it off the public surface. */
export const submit = Symbol('spawnpool.submit');

/**
 * Worker threads that spawn, feed, capture and reap children, many per
 * thread. An idle pool holds no reference on the event loop.
 */
export class SpawnPool {
  readonly #piscina: Piscina;
  readonly #channelName: string;
  #state: 'open' | 'closing' | 'destroyed' = 'open';
  /** Every submitted run until it settles: stats count them, destroy() waits for their reaping. */
  readonly #runs = new Set<Promise<unknown>>();
  readonly #metrics = new PoolMetrics();

  constructor(opts: SpawnPoolOptions = {}) {
    if (opts === null || typeof opts !== 'object') throw new CommandError('EINVAL', 'SpawnPool: options must be an object', { command: '' });
    const threads = checkCount('threads', opts.threads) ?? availableParallelism();
    const maxQueue = checkCount('maxQueue', opts.maxQueue, 0) ?? Infinity;
    const engine = chooseEngine(opts.engine);
    this.#channelName = `spawnpool:${process.pid}:${++poolSerial}`;
    const workerData: WorkerConfig = { engine, channel: this.#channelName };
    this.#piscina = new Piscina({
      filename: new URL('./worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      maxQueue,
      idleTimeout: checkCount('idleTimeoutMs', opts.idleTimeoutMs, 0) ?? 30_000,
      concurrentTasksPerWorker: RUNS_PER_THREAD,
      // Workers run async I/O between tasks; Atomics.wait would block it.
      atomics: 'disabled',
      workerData,
    });
  }

  /** @internal */
  async [submit](task: RunTask, command: string): Promise<RunOutcome> {
    if (this.#state !== 'open') {
      this.#metrics.recordRefused('pool');
      throw new CommandError('EPOOLCLOSED', `Cannot run ${command}: the pool is ${this.#state === 'closing' ? 'closed' : 'destroyed'}`, { command });
    }
    try {
      const transferList = task.port ? [task.port as MessagePort] : [];
      const pending = this.#piscina.run(task, { transferList });
      this.#runs.add(pending);
      void pending.finally(() => this.#runs.delete(pending)).catch(() => undefined);
      const outcome = (await pending) as RunOutcome;
      this.#metrics.record(outcome);
      return outcome;
    } catch (err) {
      const error = this.#taskError(err, command);
      this.#metrics.recordRefused(error.code === 'EWORKER' ? 'workerLost' : 'pool');
      throw error;
    }
  }

  #taskError(err: unknown, command: string): CommandError {
    const message = err instanceof Error ? err.message : String(err);
    if (/queue is at limit/i.test(message)) {
      return new CommandError('EQUEUEFULL', `Cannot run ${command}: the pool's queue is full`, { command, cause: err });
    }
    if (this.#state === 'destroyed') {
      return new CommandError('EPOOLCLOSED', `Cannot run ${command}: the pool was destroyed`, { command, cause: err });
    }
    // Piscina starts another thread in its place.
    return new CommandError('EWORKER', `${command}: the worker thread running it died (${message}); its child was killed`, { command, cause: err });
  }

  stats(): PoolStats {
    const queued = this.#piscina.queueSize;
    return {
      threads: this.#piscina.threads.length,
      running: Math.max(0, this.#runs.size - queued),
      queued,
      completed: this.#metrics.completed,
      failed: this.#metrics.failed,
      outcomes: this.#metrics.outcomes(),
      ...this.#metrics.latency(),
    };
  }

  /** Finish what runs and what is queued, refuse new work, stop the workers. */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    await this.#piscina.close();
  }

  /** Kill every child (SIGKILL), reap them, stop the workers. */
  async destroy(): Promise<void> {
    if (this.#state === 'destroyed') return;
    this.#state = 'destroyed';
    const channel = new BroadcastChannel(this.#channelName);
    channel.postMessage(DESTROY_MESSAGE);
    channel.close();
    // Runs end once their children are reaped; only then stop the threads
    // (terminating a worker earlier would orphan its children). Queued runs
    // reach a worker that already knows, and end without spawning.
    while (this.#runs.size > 0) await Promise.allSettled([...this.#runs]);
    await this.#piscina.close({ force: true });
  }
}

function checkCount(name: string, value: unknown, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new CommandError('EINVAL', `SpawnPool: ${name} must be an integer >= ${min}, got ${String(value)}`, { command: '' });
  }
  return value;
}
