import { MessageChannel, parentPort, type MessagePort } from 'node:worker_threads';
import { LANE_KEY, packOutcome, type LaneReport, type LaneRequest, type OutcomeExtras, type RunOutcome } from '../shared/protocol.js';

/**
 * The worker's end of its lane to the pool. Outcomes finished in one turn of
 * this thread's loop go back as one message (one structured clone, one
 * wake-up of the main thread), with their byte buffers moved, not copied.
 */
export class Lane {
  readonly #port: MessagePort;
  #numbers: number[] = [];
  #extras: (OutcomeExtras | 0)[] = [];
  #spawned: number[] = [];
  #transfer: ArrayBuffer[] = [];
  #flushQueued = false;
  #silenced = false;
  #lostSent = false;

  constructor(onRequest: (request: LaneRequest) => void) {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    port1.on('message', onRequest);
    // The pool is the thread's parent; piscina passes on what is not its own.
    parentPort!.postMessage({ [LANE_KEY]: port2 }, [port2]);
  }

  complete(id: number, outcome: RunOutcome): void {
    if (this.#silenced) return;
    packOutcome(this.#numbers, this.#extras, id, outcome);
    for (const bytes of [outcome.stdout, outcome.stderr, outcome.output, outcome.stderrTail]) {
      if (bytes !== undefined && bytes.byteLength > 0 && !this.#transfer.includes(bytes.buffer as ArrayBuffer)) {
        this.#transfer.push(bytes.buffer as ArrayBuffer);
      }
    }
    this.#queueFlush();
  }

  /** A run that asked for its pid runs now; told with this turn's outcomes. */
  spawned(id: number, pid: number): void {
    if (this.#silenced) return;
    this.#spawned.push(id, pid);
    this.#queueFlush();
  }

  #queueFlush(): void {
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#extras.length === 0 && this.#spawned.length === 0) return;
    const numbers = new Float64Array(this.#numbers);
    const report: LaneReport = { t: 'done', numbers, extras: this.#extras, spawned: this.#spawned };
    const transfer = this.#transfer;
    transfer.push(numbers.buffer);
    this.#numbers = [];
    this.#extras = [];
    this.#spawned = [];
    this.#transfer = [];
    this.#port.postMessage(report, transfer);
  }

  /** The thread is going down: outcomes from now on are not reported (its runs are lost). */
  silence(): void {
    if (this.#flushQueued) this.#flush();
    this.#silenced = true;
  }

  /** Says so while a message can still leave; once. */
  lost(reason: string, withChild: readonly number[]): void {
    this.silence();
    if (this.#lostSent) return;
    this.#lostSent = true;
    const report: LaneReport = { t: 'lost', reason, withChild };
    this.#port.postMessage(report);
  }
}
