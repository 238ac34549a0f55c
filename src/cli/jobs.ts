import { Command } from '../main/index.js';

/** One job of a batch: a JSONL line, or a template filled with one set of arguments. */
export interface Job {
  readonly id: string;
  /** The input line (JSONL), or the job number (templates). */
  readonly line: number;
  /** A template's arguments, one per source (for --tag); none for a JSONL job. */
  readonly args: readonly string[] | undefined;
  /** The argv, for the slot (1..-j) that runs it: `{%}` depends on it. */
  readonly argv: (slot: number) => readonly string[];
  readonly env: Readonly<Record<string, string>> | undefined;
  readonly cwd: string | undefined;
  readonly input: string | undefined;
  readonly timeoutMs: number | undefined;
}

export type ParsedLine =
  | { readonly kind: 'skip' }
  | { readonly kind: 'job'; readonly job: Job }
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
  const argv = o.argv;
  return {
    id: o.id === undefined ? String(number) : String(o.id),
    line: number,
    args: undefined,
    argv: () => argv,
    env: o.env as Record<string, string> | undefined,
    cwd: o.cwd as string | undefined,
    input: o.input as string | undefined,
    timeoutMs: o.timeoutMs as number | undefined,
  };
}

/** Blank lines and `#` comments: not jobs. */
export const isJobLine = (text: string): boolean => {
  const trimmed = text.trim();
  return trimmed !== '' && !trimmed.startsWith('#');
};

/**
 * A batch line: a JSON array (argv) or a JSON object
 * `{ id?, argv, env?, cwd?, input?, timeoutMs? }`; blank lines and `#`
 * comments are skipped. A job without an id is known by its line number.
 */
export function parseJobLine(text: string, number: number): ParsedLine {
  if (!isJobLine(text)) return { kind: 'skip' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'bad', reason: `not JSON (${(err as Error).message})` };
  }
  if (Array.isArray(value)) value = { argv: value };
  else if (value === null || typeof value !== 'object') return { kind: 'bad', reason: 'expected a JSON array or object' };
  const job = checkObject(value as Record<string, unknown>, number);
  return typeof job === 'string' ? { kind: 'bad', reason: job } : { kind: 'job', job };
}

/** A job's command: its output captured as bytes (grouped), or not at all (-u). */
export type JobCommand = Command<Uint8Array | undefined, Uint8Array | undefined>;

/** What happens to a job's stdout and stderr. */
export type OutputMode = 'group' | 'ungroup';

/** What a job line adds to its argv: the same for a local job and a queued one. */
export interface JobSetting {
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly cwd?: string | undefined;
  readonly input?: string | undefined;
}

/**
 * A job's command, in a process group of its own (a terminal's Ctrl-C
 * reaches spawnpool alone; a timeout or an interrupt ends the job's whole
 * tree). `env` adds to (and overrides) the environment spawnpool itself
 * has. Throws the builder's errors (a NUL byte, a bad env name).
 */
export function jobCommand(argv: readonly string[], job: JobSetting): Command {
  const cmd = Command.fromArgv(argv).processGroup();
  if (job.env !== undefined) {
    for (const [k, v] of Object.entries({ ...process.env, ...job.env })) if (v !== undefined) cmd.envPair(k, v);
  }
  if (job.cwd !== undefined) cmd.cwd(job.cwd);
  if (job.input !== undefined) cmd.inputBuffer(job.input);
  return cmd;
}

/**
 * The job's command: its output captured as bytes (grouped), or written
 * straight to spawnpool's own stdout and stderr (-u).
 */
export function commandFor(job: Job, argv: readonly string[], output: OutputMode): JobCommand {
  const cmd = jobCommand(argv, job);
  if (output === 'group') return cmd.captureOutput({ encoding: 'buffer' }).captureError({ encoding: 'buffer' });
  return cmd.outputFd(1).errorFd(2);
}

/** A job made from a template and one argument set: its id is its number. */
export function templateJob(seq: number, args: readonly string[], argv: (slot: number) => readonly string[]): Job {
  return { id: String(seq), line: seq, args, argv, env: undefined, cwd: undefined, input: undefined, timeoutMs: undefined };
}
