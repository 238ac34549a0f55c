import { Command } from '../main/index.js';

/** One line of a batch, checked. */
export interface Job {
  readonly id: string;
  readonly line: number;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>> | undefined;
  readonly cwd: string | undefined;
  readonly input: string | undefined;
  readonly timeoutMs: number | undefined;
}

export type ParsedLine =
  | { readonly kind: 'skip' }
  /** `command`: the job's, built once (retries run it again). */
  | { readonly kind: 'job'; readonly job: Job; readonly command: Command }
  | { readonly kind: 'bad'; readonly reason: string };

const FIELDS = new Set(['id', 'argv', 'env', 'cwd', 'input', 'timeoutMs']);

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.every((a) => typeof a === 'string');
}

function checkObject(o: Record<string, unknown>, number: number): Job | string {
  const unknown = Object.keys(o).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) return `unknown field "${unknown}"`;
  if (!isStringArray(o.argv)) return '"argv" must be a non-empty array of strings';
  if (o.id !== undefined && (typeof o.id !== 'string' || o.id === '') && !Number.isInteger(o.id)) return '"id" must be a non-empty string or an integer';
  if (o.env !== undefined && (o.env === null || typeof o.env !== 'object' || Array.isArray(o.env)
    || Object.values(o.env).some((v) => typeof v !== 'string'))) return '"env" must be an object of strings';
  if (o.cwd !== undefined && typeof o.cwd !== 'string') return '"cwd" must be a string';
  if (o.input !== undefined && typeof o.input !== 'string') return '"input" must be a string';
  if (o.timeoutMs !== undefined && (typeof o.timeoutMs !== 'number' || !(o.timeoutMs >= 0))) return '"timeoutMs" must be a number >= 0';
  return {
    id: o.id === undefined ? String(number) : String(o.id),
    line: number,
    argv: o.argv,
    env: o.env as Record<string, string> | undefined,
    cwd: o.cwd as string | undefined,
    input: o.input as string | undefined,
    timeoutMs: o.timeoutMs as number | undefined,
  };
}

/**
 * A batch line: a JSON array (argv) or a JSON object
 * `{ id?, argv, env?, cwd?, input?, timeoutMs? }`; blank lines and `#`
 * comments are skipped. A job without an id is known by its line number.
 * `capture`: the command keeps stdout and stderr.
 */
export function parseJobLine(text: string, number: number, capture: boolean): ParsedLine {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return { kind: 'skip' };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (err) {
    return { kind: 'bad', reason: `not JSON (${(err as Error).message})` };
  }
  if (Array.isArray(value)) value = { argv: value };
  else if (value === null || typeof value !== 'object') return { kind: 'bad', reason: 'expected a JSON array or object' };
  const job = checkObject(value as Record<string, unknown>, number);
  if (typeof job === 'string') return { kind: 'bad', reason: job };
  // The builder's own checks (NUL bytes, bad env names) apply here too.
  try {
    return { kind: 'job', job, command: commandFor(job, capture) };
  } catch (err) {
    return { kind: 'bad', reason: (err as Error).message };
  }
}

/**
 * The job's command. `env` adds to (and overrides) the environment the CLI
 * itself has; `capture` keeps stdout and stderr for the results file.
 */
export function commandFor(job: Job, capture: boolean): Command {
  const cmd = Command.fromArgv(job.argv);
  if (job.env !== undefined) {
    for (const [k, v] of Object.entries({ ...process.env, ...job.env })) if (v !== undefined) cmd.envPair(k, v);
  }
  if (job.cwd !== undefined) cmd.cwd(job.cwd);
  if (job.input !== undefined) cmd.inputBuffer(job.input);
  if (capture) cmd.captureOutput().captureError();
  return cmd;
}
