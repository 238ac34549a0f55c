import { accessSync, constants, createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { readLines } from '../main/lines.js';
import { resolveBinary } from '../shared/resolve.js';
import type { EngineName } from '../main/engine-choice.js';
import { runBatch, type BatchOptions, type FeedItem } from './batch.js';
import { parseDuration } from './duration.js';
import { parseHalt } from './halt.js';
import { isJobLine, parseJobLine, templateJob } from './jobs.js';
import { argumentSets, countArgumentSets, countLines, isRegularFile, type Source } from './sources.js';
import { Template } from './template.js';
import { UsageError } from './usage.js';

export const RUN_USAGE = `  spawnpool run [OPTIONS] [FILE|-]
      JSONL jobs, one per line: a JSON array (argv) or an object
      { id?, argv, env?, cwd?, input?, timeoutMs? }. Blank and # lines are skipped.
  spawnpool run [OPTIONS] [--] CMD [ARGS...] [::: A B ...] [:::: FILE] [:::+ ...] [::::+ FILE]
      A command template, GNU parallel's way: one job per argument (the lines
      of stdin, or of -a FILE, without ::: or ::::); several sources combine
      as a product, linked ones (:::+, --link) pair up. {} {.} {/} {//} {/.}
      {#} {%} {1} {2.} ... are replaced inside each word; never a shell.
      Without --, the command starts at the first word that is not an option
      nor a JSONL file (one without execute permission); options go before it.
    -j, --jobs N|N%|+N|-N|0   at once (default: cores; 0: as many as the limits allow)
    --timeout DURATION        per job: 500ms, 30s, 5m, 1h; a bare number is seconds
    --retries N               run a failed job again, up to N times
    --joblog FILE             a JSON line per finished job, synced
    --resume                  skip the jobs the joblog shows finished
    --resume-failed           skip the succeeded ones, run the failed ones again
    --results FILE            a JSON line per job (appended to a pipe or device)
    --capture                 stdout and stderr into --results too
    --halt never|now|soon,fail=N|N%|success=N|N%   (--halt-on-fail: soon,fail=1)
    -k, --keep-order          output in input order
    --tag                     prefix output lines with the job's arguments and a tab
    -u, --ungroup             jobs write straight to spawnpool's stdout and stderr
    --dry-run                 print each command line, run nothing
    -a, --arg-file FILE       arguments from FILE (repeatable: one source each)
    --link                    pair the sources instead of combining them
    --bar, --eta              progress on stderr (a terminal only)
    --engine native|node`;

export const QUEUE_USAGE = `  spawnpool run ... --queue URL --joblog FILE [--batch NAME] [--key-file F] [--window N] [--max-output BYTES]
      The batch goes to a queue on Redis (redis://[user:pass@]host:port/db,
      rediss://, unix:///path.sock; or SPAWNPOOL_QUEUE with --batch) and
      workers run it; this process submits, logs each job once, and exits as
      run does. The joblog is the batch's record: a job it shows finished is
      never submitted again (--resume-failed: unless it failed). The batch
      name defaults to the input file's name and a hash of its path.
    --key-file F              sign every job (HMAC-SHA256; or SPAWNPOOL_KEY)
    --window N                jobs submitted and not yet logged, at most (default 100000)
    --max-output BYTES        stdout and stderr kept per job in its result (default 65536; past 16 MiB a stream the job ends EMAXBUFFER)
  spawnpool submit ... --queue URL [--batch NAME]   submit and exit; run --resume collects
  spawnpool worker --queue URL [--batch NAME] [-j N] [--lease 10s] [--grace 10s] [--name NAME]
                   [--key-file F] [--allow PATH ...] [--allow-file F] [--as-user NAME] [--max-lost N]
      Runs the batch's jobs until SIGINT/SIGTERM: then no new job, the running
      ones get --grace, then are aborted and put back (a second signal: at
      once); exit 130. Without --batch: every batch not yet finished, -j across them.
  spawnpool status --queue URL [--batch NAME]    counts, workers seen, oldest running job
  spawnpool cancel --queue URL --batch NAME      pause, abort the running jobs, remove the waiting ones`;

const SEPARATORS: Record<string, { kind: 'list' | 'file'; linked: boolean }> = {
  ':::': { kind: 'list', linked: false },
  ':::+': { kind: 'list', linked: true },
  '::::': { kind: 'file', linked: false },
  '::::+': { kind: 'file', linked: true },
};

export function count(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${value}`);
  return n;
}

export function engine(value: string | undefined): EngineName | undefined {
  if (value === undefined || value === 'native' || value === 'node') return value;
  throw new UsageError(`--engine must be native or node, got ${value}`);
}

/** The soft limit named in /proc/self/limits ("Max open files"), when there is one. */
function softLimit(name: string): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
    const soft = line?.slice(name.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** Jobs at once with -j 0: each holds a pidfd and two pipe ends in its worker. */
const FDS_PER_JOB = 4;
const MOST_JOBS = 1024;

/** `-j`: N, N% of the cores, +N / -N cores, 0 as many as the fd and process limits allow. */
export function parseJobs(value: string | undefined): number {
  const cores = availableParallelism();
  if (value === undefined) return cores;
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n > 0) return n;
    const fds = softLimit('Max open files');
    const procs = softLimit('Max processes');
    return Math.max(1, Math.min(MOST_JOBS, fds === undefined ? MOST_JOBS : Math.floor((fds - 64) / FDS_PER_JOB), procs ?? MOST_JOBS));
  }
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (percent !== null && Number(percent[1]) > 0) return Math.max(1, Math.floor((cores * Number(percent[1])) / 100));
  if (/^[+-]\d+$/.test(value)) return Math.max(1, cores + Number(value));
  throw new UsageError(`-j must be N, N%, +N, -N or 0, got ${value}`);
}

/** The words after `--`: the template, then its sources. */
function splitTemplate(words: readonly string[]): { template: string[]; sources: Source[] } {
  const first = words.findIndex((w) => w in SEPARATORS);
  const template = first === -1 ? [...words] : words.slice(0, first);
  const sources: Source[] = [];
  for (let i = first === -1 ? words.length : first; i < words.length;) {
    const sep = SEPARATORS[words[i]!]!;
    let end = i + 1;
    while (end < words.length && !(words[end]! in SEPARATORS)) end++;
    const values = words.slice(i + 1, end);
    if (sep.kind === 'list') sources.push({ kind: 'list', values, linked: sep.linked });
    else {
      if (values.length === 0) throw new UsageError(`${words[i]} needs a file`);
      // `:::: A B`: two sources, as in GNU parallel; only the first links with the one before.
      for (const [k, path] of values.entries()) sources.push({ kind: 'file', path, linked: k === 0 && sep.linked });
    }
    i = end;
  }
  return { template, sources };
}

async function* jsonlFeed(input: Readable): AsyncGenerator<FeedItem> {
  for await (const { number, text } of readLines(input)) {
    const parsed = parseJobLine(text, number);
    if (parsed.kind === 'job') yield parsed;
    else if (parsed.kind === 'bad') yield { kind: 'bad', line: number, reason: parsed.reason };
  }
}

async function* templateFeed(template: Template, sources: readonly Source[], link: boolean, stdin: Readable): AsyncGenerator<FeedItem> {
  let seq = 0;
  for await (const args of argumentSets(sources, link, { stdin })) {
    const n = ++seq;
    const fixed = template.usesSlot ? undefined : template.argv(args, n, 1);
    yield { kind: 'job', job: templateJob(n, args, fixed !== undefined ? () => fixed : (slot) => template.argv(args, n, slot)) };
  }
}

async function opened(path: string): Promise<Readable> {
  const input = createReadStream(path);
  // Open errors (no such file) surface here, as a message, not a stack.
  await new Promise<void>((resolve, reject) => input.once('open', () => resolve()).once('error', reject));
  return input;
}

function warnIfTerminal(stdin: Readable & { isTTY?: boolean }, stderr: NodeJS.WriteStream): void {
  if (stdin.isTTY === true) stderr.write('spawnpool run: reading the input from the terminal; end it with Ctrl-D\n');
}

const OPTIONS = {
  jobs: { type: 'string', short: 'j' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  joblog: { type: 'string' },
  resume: { type: 'boolean', default: false },
  'resume-failed': { type: 'boolean', default: false },
  results: { type: 'string' },
  capture: { type: 'boolean', default: false },
  halt: { type: 'string' },
  'halt-on-fail': { type: 'boolean', default: false },
  'keep-order': { type: 'boolean', short: 'k', default: false },
  tag: { type: 'boolean', default: false },
  ungroup: { type: 'boolean', short: 'u', default: false },
  'dry-run': { type: 'boolean', default: false },
  'arg-file': { type: 'string', short: 'a', multiple: true },
  link: { type: 'boolean', default: false },
  bar: { type: 'boolean', default: false },
  eta: { type: 'boolean', default: false },
  engine: { type: 'string' },
  queue: { type: 'string' },
  batch: { type: 'string' },
  'key-file': { type: 'string' },
  window: { type: 'string' },
  'max-output': { type: 'string' },
} as const;

/** `--timeout`, `-j`: the options whose value may be the next word. */
const TAKES_VALUE = new Set(Object.entries(OPTIONS).flatMap(([name, o]) =>
  o.type === 'string' ? [`--${name}`, ...('short' in o ? [`-${o.short}`] : [])] : []));

/** A JSONL input rather than a program: `-`, or a regular file nobody may execute. */
function isJobFile(word: string): boolean {
  if (word === '-') return true;
  try {
    const st = statSync(word);
    return st.isFile() && (st.mode & 0o111) === 0;
  } catch {
    return false;
  }
}

/**
 * spawnpool's own words, and the command template when there is one: after
 * `--`, or, as GNU parallel reads its command line, from the first word that
 * is neither an option nor a JSONL file (`-`, or a file without execute
 * permission) on; that word must then name a program.
 */
function splitCommandLine(args: readonly string[]): { own: string[]; command: string[] | undefined } {
  const terminator = args.indexOf('--');
  if (terminator !== -1) return { own: args.slice(0, terminator), command: args.slice(terminator + 1) };
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if (word.startsWith('-') && word !== '-') {
      if (TAKES_VALUE.has(word)) i++;
      continue;
    }
    if (isJobFile(word)) continue;
    // A typo in a file's name is not a command reading stdin for ever.
    const program = resolveBinary(word, process.env.PATH, process.cwd());
    if (typeof program !== 'string' || !existsSync(program)) throw new UsageError(`${word}: no such input file or program`);
    return { own: args.slice(0, i), command: args.slice(i) };
  }
  return { own: [...args], command: undefined };
}

/** `spawnpool run`. */
export async function runCommand(args: string[], stdin: Readable, stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream, mode: 'run' | 'submit' = 'run'): Promise<number> {
  const { own, command } = splitCommandLine(args);
  const { values, positionals } = parseArgs({ args: own, allowPositionals: true, options: OPTIONS });
  const resume = values['resume-failed'] ? 'failed' : values.resume ? 'all' : undefined;
  if (resume !== undefined && values.joblog === undefined) throw new UsageError(`--${resume === 'failed' ? 'resume-failed' : 'resume'} needs --joblog`);
  if (values.ungroup && (values.capture || values.tag || values['keep-order'])) {
    throw new UsageError('-u hands the jobs spawnpool\'s own stdout and stderr: nothing to --capture, --tag or -k');
  }
  if (values.halt !== undefined && values['halt-on-fail']) throw new UsageError('--halt and --halt-on-fail: one of them');
  const argFiles = values['arg-file'] ?? [];

  let feed: AsyncIterable<FeedItem>;
  let input: Readable | undefined;
  let total: Promise<number | undefined>;
  let usesSlot = false;
  if (command === undefined) {
    if (positionals.length > 1) throw new UsageError(`one input file at most, got ${positionals.join(' ')}`);
    if (argFiles.length > 0) throw new UsageError('-a gives arguments to a command template: spawnpool run -a FILE -- CMD ...');
    const file = positionals[0] ?? '-';
    input = file === '-' ? stdin : await opened(file);
    if (file === '-') warnIfTerminal(stdin, stderr);
    feed = jsonlFeed(input);
    total = file !== '-' && isRegularFile(file) ? countLines(file, isJobLine) : Promise.resolve(undefined);
  } else {
    if (positionals.length > 0) {
      throw new UsageError(`with a command, arguments come from :::, :::: FILE, -a FILE or stdin, not ${positionals.join(' ')}`);
    }
    const split = splitTemplate(command);
    if (split.sources.length > 0 && argFiles.length > 0) throw new UsageError('-a and ::: / ::::: one or the other');
    const sources: Source[] = split.sources.length > 0 ? split.sources
      : argFiles.length > 0 ? argFiles.map((path) => ({ kind: 'file', path, linked: false }))
      : [{ kind: 'file', path: '-', linked: false }];
    for (const s of sources) {
      // A missing or unreadable file is a usage error now, not a job failure later.
      if (s.kind === 'file' && s.path !== '-') accessSync(s.path, constants.R_OK);
    }
    const template = new Template(split.template, sources.length);
    usesSlot = template.usesSlot;
    if (sources.some((s) => s.kind === 'file' && s.path === '-')) {
      input = stdin;
      warnIfTerminal(stdin, stderr);
    }
    feed = templateFeed(template, sources, values.link, stdin);
    total = countArgumentSets(sources, values.link);
  }

  const options: BatchOptions = {
    feed, input, total, usesSlot,
    jobs: parseJobs(values.jobs),
    timeoutMs: values.timeout === undefined ? undefined : parseDuration('--timeout', values.timeout),
    retries: count('--retries', values.retries, 0, 0),
    joblog: values.joblog,
    resume,
    results: values.results,
    capture: values.capture,
    halt: values['halt-on-fail'] ? parseHalt('soon,fail=1') : values.halt === undefined ? undefined : parseHalt(values.halt),
    output: values.ungroup ? 'ungroup' : 'group',
    keepOrder: values['keep-order'],
    tag: values.tag,
    dryRun: values['dry-run'],
    progress: values.bar ? 'bar' : values.eta ? 'eta' : undefined,
    engine: engine(values.engine),
    stdout,
    stderr,
  };
  // With a queue, or SPAWNPOOL_QUEUE and a batch name: the queue's code is loaded only then.
  const queued = values.queue !== undefined || (values.batch !== undefined && (process.env.SPAWNPOOL_QUEUE ?? '') !== '') || mode === 'submit';
  if (!queued) {
    const extra = (['batch', 'key-file', 'window', 'max-output'] as const).find((k) => values[k] !== undefined);
    if (extra !== undefined) throw new UsageError(`--${extra} goes with --queue`);
    return runBatch(options);
  }
  const { queuedRun } = await import('./queue-command.js');
  return queuedRun(options, { ...values, input: command === undefined ? positionals[0] ?? '-' : undefined }, mode);
}
