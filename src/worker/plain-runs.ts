import { sharedNow } from '../shared/clock.js';
import { unstarted, type WireFailure } from '../shared/protocol.js';
import type { WireTask } from '../shared/wire.js';
import type { Engine, PlainChild } from './engine.js';
import { launchFailure, type Completions } from './run-child.js';

const SIGKILL = 9;
const SLASH = 0x2f;
const LOST: WireFailure = Object.freeze({ code: 'ECHILD', message: 'its exit status was lost (reaped elsewhere)' });
const DESTROYED: WireFailure = Object.freeze({ code: 'EPOOLCLOSED', message: 'killed: the pool was destroyed' });

class PlainRun implements PlainChild {
  pid = 0;
  engineId = 0;
  spawnMs = 0;
  reason: WireFailure | undefined;

  constructor(
    private readonly owner: PlainRuns,
    readonly laneId: number,
    readonly startedAt: number,
    readonly queueWaitMs: number,
  ) {}

  exited(rawStatus: number, stderrTail: Uint8Array | undefined): void {
    this.owner.finish(this, rawStatus, stderrTail);
  }
}

/**
 * Runs that are a program by absolute path, its arguments and an
 * environment, and nothing else: no spec field off its default, no
 * timeout, no abort, no port (the wire's `rest` is 0). Most runs of a
 * storm or a batch are such. They skip the general path (decoded spec,
 * spawn plan, flags, fast-path io, Ending, closures: a dozen objects and
 * twenty functions per run), whose interpreted JS and its compilation in
 * the first few thousand runs cost as much as the spawn itself
 * (bench/RESULTS.md). Their outcomes are those of the general path.
 */
export class PlainRuns {
  /** By lane id: the runs with a child now. */
  readonly #live = new Map<number, PlainRun>();
  #destroyed = false;

  constructor(private readonly engine: Engine, private readonly completions: Completions) {}

  /** A run that can go this way; any other (and every run once the pool is destroyed) takes the general path. */
  fits(wire: WireTask): boolean {
    return wire[6] === 0 && wire[1].charCodeAt(0) === SLASH && this.engine.spawnPlain !== undefined && !this.#destroyed;
  }

  start(wire: WireTask, env: readonly string[] | Uint8Array): void {
    const id = wire[0];
    const file = wire[1];
    const startedAt = sharedNow();
    const run = new PlainRun(this, id, startedAt, Math.max(0, startedAt - wire[5]));
    try {
      this.engine.spawnPlain!(file, [file, ...wire[2]], env, run);
    } catch (err) {
      this.completions.complete(id, unstarted(launchFailure(err, undefined, file), sharedNow() - startedAt, run.queueWaitMs));
      return;
    }
    run.spawnMs = sharedNow() - startedAt;
    this.#live.set(id, run);
  }

  finish(run: PlainRun, rawStatus: number, stderrTail: Uint8Array | undefined): void {
    this.#live.delete(run.laneId);
    this.completions.complete(run.laneId, {
      pid: run.pid,
      rawStatus: rawStatus < 0 ? undefined : rawStatus,
      failure: run.reason ?? (rawStatus < 0 ? LOST : undefined),
      stdout: undefined,
      stderr: undefined,
      output: undefined,
      stderrTail,
      durationMs: sharedNow() - run.startedAt,
      queueWaitMs: run.queueWaitMs,
      spawnMs: run.spawnMs,
    });
  }

  /** The pool is being destroyed: SIGKILL every child (each run ends once reaped); later runs take the general path, which refuses them. */
  endAll(): void {
    this.#destroyed = true;
    for (const run of this.#live.values()) {
      run.reason ??= DESTROYED;
      this.engine.killPlain!(run, SIGKILL);
    }
  }

  /** The thread is exiting: no record will arrive, so SIGKILL without waiting. */
  killAllNow(): void {
    for (const run of this.#live.values()) this.engine.killPlain!(run, SIGKILL);
  }

  laneIds(): number[] {
    return [...this.#live.keys()];
  }
}
