import { SPEC_DEFAULTS, type CommandSpec } from './spec.js';

/**
 * A spec as the lane carries it: the binary, the arguments, and only the
 * fields that differ from SPEC_DEFAULTS. A structured clone pays per
 * property on both sides; the whole spec of a plain command has 27, and
 * cloning and rebuilding it cost 6.6 µs per run, the sparse one 1.9 µs
 * (bench/RESULTS.md).
 */
export type WireSpec = Pick<CommandSpec, 'binary' | 'args'> & Partial<CommandSpec>;

type Field = keyof typeof SPEC_DEFAULTS;
const FIELDS = Object.keys(SPEC_DEFAULTS) as Field[];

/** Defaults are shared objects (told by identity) or empty lists. */
function isDefault(field: Field, value: unknown): boolean {
  const fallback = SPEC_DEFAULTS[field];
  return value === fallback || (Array.isArray(value) && value.length === 0 && Array.isArray(fallback));
}

export function toWire(spec: CommandSpec): WireSpec {
  const wire: Record<string, unknown> = { binary: spec.binary, args: spec.args };
  for (const field of FIELDS) if (!isDefault(field, spec[field])) wire[field] = spec[field];
  return wire as WireSpec;
}

export function fromWire(wire: WireSpec): CommandSpec {
  return { ...SPEC_DEFAULTS, ...wire };
}
