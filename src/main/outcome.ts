import { CommandError, endingMessage } from '../shared/errors.js';
import type { RunOutcome } from '../shared/protocol.js';
import { STDERR_TAIL_BYTES, type CommandSpec, type OutputWiring } from '../shared/spec.js';
import { exitStatus, exitedNormally, termSignal } from '../shared/status.js';
import { CompletedRun, LazyText, type RunResult } from './result.js';

function lazy(bytes: Uint8Array | undefined, wiring: OutputWiring, kind: OutputWiring['kind']): LazyText | undefined {
  if (wiring.kind !== kind || !('encoding' in wiring)) return undefined;
  return new LazyText(bytes, wiring.encoding);
}

function tailText(bytes: Uint8Array | undefined): string {
  if (!bytes || bytes.byteLength === 0) return '';
  const start = Math.max(0, bytes.byteLength - STDERR_TAIL_BYTES);
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.byteLength - start).toString('utf8');
}

/**
 * Turns what a worker reported into the caller's answer, with virCommandRun's
 * rules: a non-zero exit or a signal rejects unless the caller asked for the
 * status (and, for a signal, for the raw status).
 */
export function settle(spec: CommandSpec, outcome: RunOutcome, command: () => string, wantStatus: boolean): RunResult {
  const raw = outcome.rawStatus;
  const resolves = outcome.failure === undefined && raw !== undefined &&
    (exitedNormally(raw) ? wantStatus || exitStatus(raw) === 0 : wantStatus && spec.rawStatus);
  if (!resolves) throw failure(spec, outcome, command);
  return new CompletedRun({
    pid: outcome.pid,
    status: spec.rawStatus ? raw : exitStatus(raw)!,
    signal: termSignal(raw),
    stdout: lazy(outcome.stdout, spec.stdout, 'capture'),
    stderr: lazy(outcome.stderr, spec.stderr, 'capture'),
    output: lazy(outcome.output, spec.stdout, 'combined'),
    durationMs: outcome.durationMs,
    command,
    daemonPid: outcome.daemonPid,
  });
}

/** Why settle() rejects: the error, with what the run left (status, signal, captures, stderr's tail). */
function failure(spec: CommandSpec, outcome: RunOutcome, command: () => string): CommandError {
  const raw = outcome.rawStatus;
  const pid = outcome.pid === 0 ? undefined : outcome.pid;
  const error = (code: string, message: string) => new CommandError(code, message, {
    command: command(), pid,
    exitStatus: raw === undefined ? undefined : exitStatus(raw),
    signal: raw === undefined ? undefined : termSignal(raw),
    stdout: lazy(outcome.stdout, spec.stdout, 'capture')?.value,
    stderr: lazy(outcome.stderr, spec.stderr, 'capture')?.value,
    output: lazy(outcome.output, spec.stdout, 'combined')?.value,
    durationMs: pid === undefined ? undefined : outcome.durationMs,
  });
  const tail = tailText(outcome.stderrTail ?? outcome.stderr ?? outcome.output);

  if (outcome.failure) {
    const { code, message } = outcome.failure;
    return pid === undefined ? error(code, `Cannot run ${command()}: ${message}`) : error(code, endingMessage(command(), message, tail));
  }
  if (raw === undefined) return error('ESPAWN', `Cannot run ${command()}: no status`);
  if (!exitedNormally(raw)) return error('ESIGNAL', endingMessage(command(), `killed by signal ${termSignal(raw)}`, tail));
  // Only a non-zero exit without `status` is left.
  return error('EEXIT', endingMessage(command(), `exited with status ${exitStatus(raw)}`, tail));
}
