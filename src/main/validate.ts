import { invalidArgument } from '../shared/errors.js';

/**
 * Eager checks for builder input: each throws CommandError EINVAL naming
 * the method and the bad value, so the stack points at the bad call.
 */

export type ArgValue = string | number | bigint;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

export function toArg(method: string, value: unknown, position: string, command: string): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'bigint') text = value.toString(10);
  else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
  else {
    throw invalidArgument(method, `${position} must be a string, a finite number or a bigint, got ${describe(value)}`, command);
  }
  if (text.includes('\0')) throw invalidArgument(method, `${position} contains a NUL byte`, command);
  return text;
}

export function checkEnvName(method: string, name: unknown, command: string): string {
  if (typeof name !== 'string') throw invalidArgument(method, `variable name must be a string, got ${describe(name)}`, command);
  if (name === '') throw invalidArgument(method, 'variable name is empty', command);
  if (name.includes('=')) throw invalidArgument(method, `variable name ${JSON.stringify(name)} contains '='`, command);
  if (name.includes('\0')) throw invalidArgument(method, `variable name ${JSON.stringify(name)} contains a NUL byte`, command);
  return name;
}

export function checkEnvValue(method: string, name: string, value: unknown, command: string): string {
  if (typeof value !== 'string') throw invalidArgument(method, `value of ${name} must be a string, got ${describe(value)}`, command);
  if (value.includes('\0')) throw invalidArgument(method, `value of ${name} contains a NUL byte`, command);
  return value;
}

export function checkFd(method: string, fd: unknown, command: string, min = 0): number {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < min || fd > 0x7fffffff) {
    throw invalidArgument(method, `fd must be an integer >= ${min}, got ${describe(fd)}`, command);
  }
  return fd;
}

export function checkPath(method: string, what: string, value: unknown, command: string): string {
  if (typeof value !== 'string' || value === '') throw invalidArgument(method, `${what} must be a non-empty string, got ${describe(value)}`, command);
  if (value.includes('\0')) throw invalidArgument(method, `${what} contains a NUL byte`, command);
  return value;
}

export function checkByteCount(method: string, value: unknown, command: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw invalidArgument(method, `byte count must be a positive integer, got ${describe(value)}`, command);
  }
  return value;
}

export function toBytes(method: string, data: unknown, command: string): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return new Uint8Array(data); // own copy: later caller edits must not reach the child
  throw invalidArgument(method, `data must be a string or a Uint8Array, got ${describe(data)}`, command);
}

/** A uid or gid: 0 to 2^31-2 (-1 means "unchanged" to the kernel). */
export function checkId(method: string, value: unknown, command: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= 0x7fffffff) {
    throw invalidArgument(method, `id must be an integer from 0 to 2147483646, got ${describe(value)}`, command);
  }
  return value;
}

/** A limit or mask: an integer from 0 to `max`. */
export function checkLimit(method: string, value: unknown, command: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalidArgument(method, `value must be an integer from 0 to ${max}, got ${describe(value)}`, command);
  }
  return value;
}
