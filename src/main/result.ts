import type { OutputEncoding } from '../shared/spec.js';

/**
 * What a captured stream gives: a Uint8Array with `{ encoding: 'buffer' }`,
 * else a string.
 */
export type Captured<E extends OutputEncoding> = E extends 'buffer' ? Uint8Array : string;

/** Any captured stream, or none: what a result holds when its command's type does not say. */
export type AnyCapture = string | Uint8Array | undefined;

/**
 * A run that ended as asked. `Out`, `Err` and `Combined` come from the
 * command's type: `undefined` unless captured, then `string` or
 * `Uint8Array` as the capture's encoding says.
 */
export interface RunResult<Out extends AnyCapture = AnyCapture, Err extends AnyCapture = AnyCapture, Combined extends AnyCapture = AnyCapture> {
  readonly pid: number;
  /** Exit status; the raw wait status with `.rawStatus()`. */
  readonly status: number;
  /** The terminating signal, when `.rawStatus()` let a signal death resolve. */
  readonly signal?: NodeJS.Signals | undefined;
  /** With `.captureOutput()`. */
  readonly stdout: Out;
  /** With `.captureError()`. */
  readonly stderr: Err;
  /** stdout and stderr interleaved, with `.captureCombined()`. */
  readonly output: Combined;
  readonly durationMs: number;
  /** `toString()` of the command that ran. */
  readonly command: string;
  readonly daemonPid?: number | undefined;
}

/** Decoded on first read, so a caller that never looks pays nothing. */
export class LazyText {
  #value: string | Uint8Array | undefined;
  #decoded = false;

  constructor(private readonly bytes: Uint8Array | undefined, private readonly encoding: OutputEncoding) {}

  get value(): string | Uint8Array {
    if (!this.#decoded) {
      const bytes = this.bytes ?? new Uint8Array(0);
      this.#value = this.encoding === 'buffer'
        ? bytes
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(this.encoding);
      this.#decoded = true;
    }
    return this.#value!;
  }
}

export interface ResultFields {
  readonly pid: number;
  readonly status: number;
  readonly signal: NodeJS.Signals | undefined;
  readonly stdout: LazyText | undefined;
  readonly stderr: LazyText | undefined;
  readonly output: LazyText | undefined;
  readonly durationMs: number;
  /** toString() of the command, built when first read. */
  readonly command: () => string;
  readonly daemonPid?: number | undefined;
}

/** A RunResult whose captured streams are decoded when first read. */
export class CompletedRun implements RunResult {
  readonly pid: number;
  readonly status: number;
  readonly signal: NodeJS.Signals | undefined;
  readonly durationMs: number;
  readonly daemonPid: number | undefined;
  readonly #fields: ResultFields;

  constructor(fields: ResultFields) {
    this.#fields = fields;
    this.pid = fields.pid;
    this.status = fields.status;
    this.signal = fields.signal;
    this.durationMs = fields.durationMs;
    this.daemonPid = fields.daemonPid;
  }

  get command(): string {
    return this.#fields.command();
  }

  get stdout(): string | Uint8Array | undefined {
    return this.#fields.stdout?.value;
  }

  get stderr(): string | Uint8Array | undefined {
    return this.#fields.stderr?.value;
  }

  get output(): string | Uint8Array | undefined {
    return this.#fields.output?.value;
  }

  toJSON(): object {
    const { pid, status, signal, stdout, stderr, output, durationMs, command, daemonPid } = this;
    return { pid, status, signal, stdout, stderr, output, durationMs, command, ...(daemonPid === undefined ? {} : { daemonPid }) };
  }
}
