import type { ErrorCode } from './codes.js';

export interface CommandErrorDetails {
  readonly command: string;
  readonly pid?: number | undefined;
  readonly exitStatus?: number | undefined;
  readonly signal?: NodeJS.Signals | undefined;
  readonly stdout?: string | Uint8Array | undefined;
  readonly stderr?: string | Uint8Array | undefined;
  readonly output?: string | Uint8Array | undefined;
  /** How long the child ran, when one ran. */
  readonly durationMs?: number | undefined;
  readonly cause?: unknown;
}

/**
 * Every failure spawnpool reports, from a bad builder call to a child that
 * died. `code` says which; the message names the command and, for a child
 * that ran and failed, ends with the tail of its stderr.
 */
export class CommandError extends Error {
  readonly code: ErrorCode;
  readonly command: string;
  readonly pid: number | undefined;
  readonly exitStatus: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  readonly stdout: string | Uint8Array | undefined;
  readonly stderr: string | Uint8Array | undefined;
  readonly output: string | Uint8Array | undefined;
  /** How long the child ran (ms), when one ran: as `RunResult.durationMs`. */
  readonly durationMs: number | undefined;

  constructor(code: ErrorCode, message: string, details: CommandErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CommandError';
    this.code = code;
    this.command = details.command;
    this.pid = details.pid;
    this.exitStatus = details.exitStatus;
    this.signal = details.signal;
    this.stdout = details.stdout;
    this.stderr = details.stderr;
    this.output = details.output;
    this.durationMs = details.durationMs;
  }
}

/** A builder call got something it cannot use. */
export function invalidArgument(method: string, problem: string, command: string): CommandError {
  return new CommandError('EINVAL', `${method}: ${problem}`, { command });
}

/** The message for a child that ran: what ended it, then its stderr tail. */
export function endingMessage(command: string, ending: string, stderrTail: string): string {
  const tail = stderrTail.trimEnd();
  return `Child process (${command}) ${ending}${tail ? `: ${tail}` : ''}`;
}
