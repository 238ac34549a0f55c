import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { OUTCOME_FIELDS, SAME_ENV, unpackOutcome, type LaneReport, type LaneRequest, type RunOutcome, type RunTask } from '../shared/protocol.js';
import { encodeTask, type WireTask } from '../shared/wire.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A run before it has a lane: its id is set as it is sent. */
export type TaskDraft = Mutable<RunTask>;

export interface LaneWaiter {
  resolve(outcome: RunOutcome): void;
  /** The lane's thread died with this run on it; `hadChild`: a child of it was running (and was killed). */
  lost(reason: string, hadChild: boolean): void;
  /** It runs (asked for with notifySpawn). */
  spawned(pid: number): void;
}

/**
 * The pool's end of one worker's lane. Runs submitted in one turn of the
 * main loop leave as one message (setImmediate: after every promise
 * reaction of the turn, before the loop sleeps); the worker answers with
 * the outcomes of one turn of its own loop per message.
 */
export class WorkerLane {
  readonly #port: MessagePort;
  readonly #waiting = new Map<number, LaneWaiter>();
  #outbox: WireTask[] = [];
  #transfer: MessagePort[] = [];
  #flushQueued = false;
  #nextId = 1;
  /** The inherited-environment block this lane carried last: the worker keeps it. */
  #envSent: unknown;
  #dead = false;

  constructor(port: MessagePort, private readonly onIdle: (lane: WorkerLane) => void, private readonly onLost: (lane: WorkerLane) => void) {
    this.#port = port;
    port.on('message', (report: LaneReport) => {
      this.#onReport(report);
      // Reports that queued meanwhile are taken here: each one dispatched as
      // a 'message' event cost an event object, a callback scope and a
      // microtask checkpoint, as much as settling the runs it carries.
      for (let next = receiveMessageOnPort(port); next !== undefined; next = receiveMessageOnPort(port)) {
        this.#onReport(next.message as LaneReport);
      }
    });
    port.on('close', () => this.#lose('the worker thread exited', []));
    // Referenced only while runs are out: an idle pool lets the process exit.
    port.unref();
  }

  /** Runs on this lane, sent or about to be. */
  get load(): number {
    return this.#waiting.size;
  }

  /** Returns the run's id on this lane. */
  send(draft: TaskDraft, waiter: LaneWaiter): number {
    const id = this.#nextId++;
    draft.id = id;
    // An inherited environment is a block that stays the same object until
    // environ changes: the worker keeps the last one it was sent.
    let env = draft.env;
    if (draft.spec.env === null) {
      if (env === this.#envSent) env = SAME_ENV;
      else this.#envSent = env;
    }
    this.#outbox.push(encodeTask(draft, env));
    if (draft.port) this.#transfer.push(draft.port);
    if (this.#waiting.size === 0) this.#port.ref();
    this.#waiting.set(id, waiter);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => this.#flush());
    }
    return id;
  }

  /** The worker ends the run with killSignal, or `signal` (it ignores one that is over). */
  abort(id: number, signal: number | undefined): void {
    if (!this.#waiting.has(id)) return;
    // The lane keeps order: the run reaches the worker first.
    if (this.#flushQueued) this.#flush();
    this.#post({ t: 'abort', id, signal }, []);
  }

  /** At most `running` of this lane's runs at once; the rest wait in the worker. */
  limit(running: number): void {
    this.#post({ t: 'limit', running }, []);
  }

  /** pool.destroy(): the worker kills every child it has. */
  destroy(): void {
    if (this.#flushQueued) this.#flush();
    this.#post({ t: 'destroy' }, []);
  }

  #flush(): void {
    this.#flushQueued = false;
    const runs = this.#outbox;
    const transfer = this.#transfer;
    this.#outbox = [];
    this.#transfer = [];
    if (runs.length > 0) this.#post({ t: 'runs', runs }, transfer);
  }

  #post(request: LaneRequest, transfer: MessagePort[]): void {
    if (this.#dead) return;
    this.#port.postMessage(request, transfer);
  }

  #onReport(report: LaneReport): void {
    if (report.t === 'lost') {
      this.#lose(report.reason, report.withChild);
      return;
    }
    const { numbers, extras, spawned } = report;
    for (let i = 0; i < spawned.length; i += 2) this.#waiting.get(spawned[i]!)?.spawned(spawned[i + 1]!);
    for (let i = 0; i < extras.length; i++) {
      const id = numbers[i * OUTCOME_FIELDS]!;
      const waiter = this.#waiting.get(id);
      this.#waiting.delete(id);
      waiter?.resolve(unpackOutcome(numbers, extras, i));
    }
    if (this.#waiting.size === 0) this.#port.unref();
    this.onIdle(this);
  }

  #lose(reason: string, withChild: readonly number[]): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#port.close();
    const hadChild = new Set(withChild);
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const [id, waiter] of waiting) waiter.lost(reason, hadChild.has(id));
    this.onLost(this);
  }
}
