import { constants } from 'node:os';

/**
 * Wait-status helpers. A raw status is encoded the way the Linux kernel and
 * glibc encode it for wait(2): exit status in bits 8-15, terminating signal
 * in bits 0-6, core dump flag in bit 7. All decoding lives here.
 */

const signalNumbers: Readonly<Record<string, number>> = constants.signals as Record<string, number>;
const signalNames = new Map<number, string>();
for (const [name, num] of Object.entries(signalNumbers)) {
  // Several names may share a number (SIGIOT/SIGABRT); keep the first,
  // which is the canonical one in Node's table.
  if (!signalNames.has(num)) signalNames.set(num, name);
}

/** WIFEXITED */
export function exitedNormally(status: number): boolean {
  return (status & 0x7f) === 0;
}

/** WEXITSTATUS; undefined when the process did not exit normally. */
export function exitStatus(status: number): number | undefined {
  return exitedNormally(status) ? (status >> 8) & 0xff : undefined;
}

/** WTERMSIG as a name such as 'SIGKILL'; undefined for a normal exit. */
export function termSignal(status: number): NodeJS.Signals | undefined {
  const sig = status & 0x7f;
  if (sig === 0 || sig === 0x7f) return undefined;
  return (signalNames.get(sig) ?? `SIG${sig}`) as NodeJS.Signals;
}

/** WCOREDUMP */
export function coreDumped(status: number): boolean {
  return !exitedNormally(status) && (status & 0x80) !== 0;
}

export function encodeExit(code: number): number {
  return (code & 0xff) << 8;
}

export function encodeSignal(signal: number, core = false): number {
  return (signal & 0x7f) | (core ? 0x80 : 0);
}

export function signalNumber(signal: NodeJS.Signals | number): number | undefined {
  if (typeof signal === 'number') {
    return Number.isInteger(signal) && signal > 0 && signal < 65 ? signal : undefined;
  }
  return signalNumbers[signal];
}

export function signalName(signal: number): NodeJS.Signals | undefined {
  return signalNames.get(signal) as NodeJS.Signals | undefined;
}
