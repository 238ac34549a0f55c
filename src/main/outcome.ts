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
  const stdout = lazy(outcome.stdout, spec.stdout, 'capture');
  const stderr = lazy(outcome.stderr, spec.stderr, 'capture');
  const output = lazy(outcome.output, spec.stdout, 'combined');
  const raw = outcome.rawStatus;
  const pid = outcome.pid === 0 ? undefined : outcome.pid;

  const fail = (code: string, message: string): never => {
    throw new CommandError(code, message, {
      command: command(), pid,
      exitStatus: raw === undefined ? undefined : exitStatus(raw),
      signal: raw === undefined ? undefined : termSignal(raw),
      stdout: stdout?.value, stderr: stderr?.value, output: output?.value,
    });
  };
  const tail = () => tailText(outcome.stderrTail ?? outcome.stderr ?? outcome.output);

  if (outcome.failure) {
    const { code, message } = outcome.failure;
    return pid === undefined
      ? fail(code, `Cannot run ${command()}: ${message}`)
      : fail(code, endingMessage(command(), message, tail()));
  }
  if (raw === undefined) return fail('ESPAWN', `Cannot run ${command()}: no status`);

  const signal = termSignal(raw);
  if (!exitedNormally(raw)) {
    if (!(wantStatus && spec.rawStatus)) fail('ESIGNAL', endingMessage(command(), `killed by signal ${signal}`, tail()));
  } else if (exitStatus(raw) !== 0 && !wantStatus) {
    fail('EEXIT', endingMessage(command(), `exited with status ${exitStatus(raw)}`, tail()));
  }
  return new CompletedRun({
    pid: outcome.pid,
    status: spec.rawStatus ? raw : exitStatus(raw)!,
    signal,
    stdout, stderr, output,
    durationMs: outcome.durationMs,
    command,
    daemonPid: outcome.daemonPid,
  });
}
