import type { MessagePort } from 'node:worker_threads';
import { SPEC_DEFAULTS, isDefaultValue, type CommandSpec } from './spec.js';
import type { RunTask } from './protocol.js';

/**
 * A run as the lane carries it. A structured clone writes every key of
 * every object it meets, and for a plain command the keys of its task and
 * spec (27 of them) cost more than the values: 6.6 µs per run for the
 * objects, 3.3 µs sparse, 0.7 µs for this tuple (bench/RESULTS.md). So the
 * fields every run has travel by position, and the rest only when they
 * differ from the defaults.
 */
export type WireTask = readonly [
  id: number,
  binary: string,
  args: readonly string[],
  env: RunTask['env'],
  parentCwd: string,
  postedAt: number,
  rest: WireRest | 0,
];

/** What a run has beyond the usual: the spec's non-default fields, a timeout, its control port... */
export interface WireRest {
  readonly spec?: Partial<CommandSpec>;
  readonly searchPath?: string;
  readonly timeoutMs?: number;
  readonly killSignal?: number;
  readonly killGraceMs?: number;
  readonly port?: MessagePort;
  readonly abortable?: true;
  readonly notifySpawn?: true;
}

const KILL_SIGNAL = 15;
const KILL_GRACE_MS = 2000;

type Field = keyof typeof SPEC_DEFAULTS;
const FIELDS = Object.keys(SPEC_DEFAULTS) as Field[];

/** `env` replaces the task's own (SAME_ENV, when the lane sent this block already). */
export function encodeTask(task: RunTask, env: RunTask['env']): WireTask {
  let spec: Record<string, unknown> | undefined;
  for (const field of FIELDS) {
    if (!isDefaultValue(task.spec[field], SPEC_DEFAULTS[field])) (spec ??= {})[field] = task.spec[field];
  }
  let rest: Record<string, unknown> | undefined;
  if (spec !== undefined) (rest ??= {}).spec = spec;
  if (task.searchPath !== undefined) (rest ??= {}).searchPath = task.searchPath;
  if (task.timeoutMs !== undefined) (rest ??= {}).timeoutMs = task.timeoutMs;
  if (task.killSignal !== KILL_SIGNAL) (rest ??= {}).killSignal = task.killSignal;
  if (task.killGraceMs !== KILL_GRACE_MS) (rest ??= {}).killGraceMs = task.killGraceMs;
  if (task.port !== undefined) (rest ??= {}).port = task.port;
  if (task.abortable) (rest ??= {}).abortable = true;
  if (task.notifySpawn) (rest ??= {}).notifySpawn = true;
  return [task.id, task.spec.binary, task.spec.args, env, task.parentCwd, task.postedAt, rest ?? 0];
}

/**
 * SPEC_DEFAULTS with a binary and arguments, as a literal: spreading the
 * frozen defaults took V8's slow path, one property at a time.
 */
function plainSpec(binary: string, args: readonly string[]): CommandSpec {
  const d = SPEC_DEFAULTS;
  return {
    binary, args, env: d.env, cwd: d.cwd, stdin: d.stdin, stdout: d.stdout, stderr: d.stderr, passFds: d.passFds,
    sendBuffers: d.sendBuffers, rawStatus: d.rawStatus, maxBuffer: d.maxBuffer, nonblockingFds: d.nonblockingFds,
    session: d.session, attrs: d.attrs,
  };
}

/** `resolveEnv` turns the wire's env (SAME_ENV included) into the receiver's. */
export function decodeTask<E>(wire: WireTask, resolveEnv: (env: RunTask['env']) => E): Omit<RunTask, 'env'> & { readonly env: E } {
  const [id, binary, args, wireEnv, parentCwd, postedAt, rest] = wire;
  const env = resolveEnv(wireEnv);
  const spec = rest === 0 || rest.spec === undefined ? plainSpec(binary, args) : { ...plainSpec(binary, args), ...rest.spec };
  if (rest === 0) return { id, spec, env, parentCwd, postedAt, killSignal: KILL_SIGNAL, killGraceMs: KILL_GRACE_MS };
  return {
    id, spec, env, parentCwd, postedAt,
    searchPath: rest.searchPath,
    timeoutMs: rest.timeoutMs,
    killSignal: rest.killSignal ?? KILL_SIGNAL,
    killGraceMs: rest.killGraceMs ?? KILL_GRACE_MS,
    port: rest.port,
    abortable: rest.abortable,
    notifySpawn: rest.notifySpawn,
  };
}
