import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { CommandError, SpawnPool } from '../main/index.js';
import { laneLimit } from '../main/pool.js';
import type { EngineName } from '../main/engine-choice.js';
import { commandLine } from '../shared/quote.js';
import { commandFor, type Job, type JobCommand, type OutputMode } from './jobs.js';
import { JobLog, readJobLog, type JobRecord } from './joblog.js';
import { Progress, type ProgressStyle } from './progress.js';
import type { HaltPolicy } from './halt.js';
import { asBytes, GroupedOutput, outputFields } from './output.js';
import { LineSink, OutputFileError } from './sink.js';
import { Tally } from './tally.js';

/** What the input gives, in order: a job, or a line that is not one. */
export type FeedItem =
  | { readonly kind: 'job'; readonly job: Job }
  | { readonly kind: 'bad'; readonly line: number; readonly reason: string };

export interface BatchOptions {
  readonly feed: AsyncIterable<FeedItem>;
  /** Destroyed on an interrupt, so that a read blocked on it ends. */
  readonly input: Readable | undefined;
  /** How many jobs the input holds, when that can be known (for --bar, --eta, --halt N%). */
  readonly total: Promise<number | undefined>;
  /** `{%}` appears in the template: a job gets its slot before it is queued. */
  readonly usesSlot: boolean;
  readonly jobs: number;
  readonly timeoutMs: number | undefined;
  readonly retries: number;
  readonly joblog: string | undefined;
  /** 'all': skip every job the joblog shows ended; 'failed': rerun the failed ones, skip the rest. */
  readonly resume: 'all' | 'failed' | undefined;
  readonly results: string | undefined;
  readonly capture: boolean;
  readonly halt: HaltPolicy | undefined;
  readonly output: OutputMode;
  readonly keepOrder: boolean;
  readonly tag: boolean;
  readonly dryRun: boolean;
  readonly progress: ProgressStyle | undefined;
  /** Default: native where it loads. */
  readonly engine: EngineName | undefined;
  readonly stdout: NodeJS.WriteStream;
  /** Where the progress line, problems and the summary go (and the jobs' stderr). */
  readonly stderr: NodeJS.WriteStream;
}

interface Attempt {
  readonly ok: boolean;
  /** The child's run time (a job held ahead in a worker waits first: not counted). */
  readonly ms: number;
  readonly status: number | null;
  readonly signal: string | null;
  readonly code: string | null;
  readonly message?: string | undefined;
  readonly stdout?: string | Uint8Array | undefined;
  readonly stderr?: string | Uint8Array | undefined;
}

/** Why no new job starts. The first three also end the running ones, which are then not logged. */
type Stop = 'SIGINT' | 'SIGTERM' | 'EPIPE' | 'halt-now' | 'halt' | 'ioerror';
const ENDS_RUNNING: ReadonlySet<Stop> = new Set(['SIGINT', 'SIGTERM', 'EPIPE', 'halt-now']);
const STATUS: Partial<Record<Stop, number>> = { SIGINT: 130, SIGTERM: 143, EPIPE: 141, ioerror: 3 };

const JOBS_PER_THREAD = 4;

const EMPTY = new Uint8Array(0);
/** The lowest free slot number (from 1), as `{%}` counts them. */
class Slots {
  readonly #free: number[] = [];
  #next = 1;

  take(): number {
    if (this.#free.length === 0) return this.#next++;
    this.#free.sort((a, b) => a - b);
    return this.#free.shift()!;
  }

  give(slot: number): void {
    this.#free.push(slot);
  }
}

/**
 * Runs a batch, `jobs` at once, each logged when it ends. Returns the exit
 * status: 0 when every job succeeded, 1 when some failed, 3 when a file of
 * spawnpool's own could not be written, 130 / 143 when interrupted by
 * SIGINT / SIGTERM, 141 when stdout was closed by its reader.
 */
export async function runBatch(o: BatchOptions): Promise<number> {
  const previous = o.resume !== undefined && o.joblog !== undefined ? readJobLog(o.joblog) : new Map<string, boolean>();
  const joblog = o.joblog === undefined || o.dryRun ? undefined : new JobLog(o.joblog);
  let results: LineSink | undefined;
  try {
    results = o.results === undefined || o.dryRun ? undefined : new LineSink(o.results, o.resume !== undefined);
  } catch (err) {
    joblog?.close();
    throw err;
  }
  // One worker thread carries a few jobs at a time as fast as several do,
  // and each thread more costs wake-ups on every job (at -j 2, one thread
  // used a fifth less CPU per job than two, and was no slower).
  const threads = Math.min(availableParallelism(), Math.ceil(o.jobs / JOBS_PER_THREAD));
  // On one thread the worker can hold the next jobs and start one the
  // moment another ends, -j still bounding what runs: a job's end then
  // costs no round trip through this thread before the next starts. Not
  // with --halt (no job may start before the last one's status is known
  // here), nor with {%} (a job's slot is known only here).
  const ahead = threads === 1 && o.halt === undefined && !o.usesSlot ? o.jobs : 0;
  const pool = o.dryRun ? undefined : new SpawnPool({ threads, engine: o.engine, ...(ahead > 0 ? { [laneLimit]: o.jobs } : {}) });
  const tally = new Tally();
  const { counts } = tally;
  const live = o.progress !== undefined && o.stderr.isTTY === true;
  const progress = new Progress(counts, o.stderr, live ? o.progress : undefined);
  let total: number | undefined;
  o.total.then((n) => (progress.total = total = n), () => undefined);
  const started = performance.now();
  const slots = new Slots();
  let stop: Stop | undefined;
  let ioError: OutputFileError | undefined;
  const inFlight = new Set<Promise<void>>();
  // One for the batch: an interrupt ends every running job.
  const interrupt = new AbortController();

  const say = (line: string) => {
    progress.clear();
    o.stderr.write(`spawnpool run: ${line}\n`);
  };
  /** An interrupt, EPIPE or `--halt now`: running jobs are being ended, and will not be logged. */
  const endingRunning = () => stop !== undefined && ENDS_RUNNING.has(stop);
  const halt = (why: Stop, message?: string) => {
    if (endingRunning()) return;
    stop = why;
    if (message !== undefined) say(message);
    if (ENDS_RUNNING.has(why)) {
      interrupt.abort();
      o.input?.destroy();
    }
  };
  const writeResult = (fields: Record<string, unknown>) => {
    if (results !== undefined && !results.write(`${JSON.stringify(fields)}\n`)) ioFailed(results.failed!);
  };
  const ioFailed = (err: OutputFileError) => {
    if (ioError !== undefined) return;
    ioError = err;
    halt('ioerror', `${err.message}: no new jobs; waiting for ${counts.running} running`);
  };

  // A reader that stops reading (| head) ends the batch quietly, as coreutils do.
  let stdoutBroken = false;
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    stdoutBroken = true;
    if (err.code === 'EPIPE') halt('EPIPE');
    else ioFailed(new OutputFileError('stdout', err));
  };
  o.stdout.on('error', onStdoutError);
  const output = new GroupedOutput({
    stdout: { write: (b: Uint8Array) => stdoutBroken || o.stdout.write(b) },
    stderr: o.stderr,
    beforeWrite: () => progress.clear(),
  }, o.keepOrder, o.tag);

  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (endingRunning()) {
      // Already ending the running jobs: no more grace.
      void pool?.destroy();
      return;
    }
    halt(signal, `${signal}: no new jobs; ending ${counts.running} running`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Jobs handed to the pool; with the worker holding the next ones, up to
  // twice -j, of which -j run.
  let handed = 0;
  const setRunning = (delta: number) => (counts.running = Math.min(handed += delta, o.jobs));

  async function attempt(job: Job, command: JobCommand): Promise<Attempt> {
    setRunning(+1);
    try {
      // run(), not runAsync(): one report per job from the worker, and its
      // duration counts from the child's start all the same.
      const r = await command.run({ pool, signal: interrupt.signal, timeoutMs: job.timeoutMs ?? o.timeoutMs });
      return { ok: true, ms: r.durationMs, status: r.status, signal: null, code: null, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      return {
        ok: false, ms: err.durationMs ?? 0, status: err.exitStatus ?? null, signal: err.signal ?? null,
        code: err.code, message: err.message, stdout: err.stdout, stderr: err.stderr,
      };
    } finally {
      setRunning(-1);
    }
  }

  /** A line that is no job, or a job whose command cannot be built: failed, in the results, not in the joblog. */
  function badJob(index: number, line: number, id: string | null, reason: string): void {
    const bad = tally.badLine(index, line, id, reason);
    say(bad.say);
    writeResult(bad.result);
    output.dropped(index);
    checkHalt();
  }

  function checkHalt(): void {
    if (stop !== undefined) return;
    const message = tally.haltMessage(o.halt, total, `, ending ${counts.running} running`);
    if (message !== undefined) halt(o.halt!.when === 'now' ? 'halt-now' : 'halt', message);
  }

  async function runJob(job: Job, index: number, slot: number): Promise<void> {
    const argv = job.argv(slot);
    let command: JobCommand;
    try {
      command = commandFor(job, argv, o.output);
    } catch (err) {
      return badJob(index, job.line, job.id, (err as Error).message);
    }
    let attempts = 0;
    let ms = 0;
    let last: Attempt;
    do {
      last = await attempt(job, command);
      ms += last.ms;
    } while (!last.ok && ++attempts <= o.retries && !endingRunning());
    // Ended by an interrupt or `--halt now`, the job did not finish: a resumed batch runs it again.
    if (last.code === 'EABORTED' && endingRunning()) return output.dropped(index);
    const durationMs = Math.round(ms * 1000) / 1000;
    tally.ended(index, `job ${job.id}`, last.ok, last.code, last.message);
    const record: JobRecord = {
      id: job.id, line: job.line, ok: last.ok, status: last.status, signal: last.signal, code: last.code,
      durationMs, attempts: Math.min(attempts, o.retries) + 1, endedAt: new Date().toISOString(),
    };
    if (joblog !== undefined && !joblog.append(record)) ioFailed(joblog.failed!);
    writeResult({
      id: job.id, line: job.line, ...(job.args === undefined ? {} : { args: job.args }), argv, status: last.status, signal: last.signal,
      code: last.code, durationMs, attempts: record.attempts,
      ...(last.message === undefined ? {} : { message: last.message }),
      ...(o.capture ? { ...outputFields('stdout', asBytes(last.stdout) ?? EMPTY), ...outputFields('stderr', asBytes(last.stderr) ?? EMPTY) } : {}),
    });
    output.ended(index, job.args === undefined ? job.id : job.args.join(' '), asBytes(last.stdout), asBytes(last.stderr));
    checkHalt();
  }

  function dryRun(job: Job): void {
    const argv = job.argv(1);
    const cd = job.cwd === undefined ? '' : `cd ${commandLine(null, [job.cwd])} && `;
    if (!stdoutBroken) o.stdout.write(`${cd}${commandLine(job.env === undefined ? null : Object.entries(job.env), argv)}\n`);
  }

  let index = 0;
  try {
    for await (const item of o.feed) {
      if (stop !== undefined) break;
      const at = index++;
      if (item.kind === 'bad') {
        badJob(at, item.line, null, item.reason);
        continue;
      }
      const { job } = item;
      const before = previous.get(job.id);
      if (tally.skips(before, o.resume)) {
        output.dropped(at);
        continue;
      }
      if (o.dryRun) {
        dryRun(job);
        continue;
      }
      while (inFlight.size >= o.jobs + ahead) await Promise.race(inFlight);
      if (stop !== undefined) {
        output.dropped(at);
        break;
      }
      const slot = slots.take();
      const running: Promise<void> = runJob(job, at, slot).finally(() => {
        slots.give(slot);
        inFlight.delete(running);
      });
      inFlight.add(running);
    }
  } catch (err) {
    // Destroying the input on an interrupt ends the iteration early; anything else is real.
    if (!endingRunning()) throw err;
  } finally {
    await Promise.allSettled(inFlight);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    output.finish();
    progress.stop();
    joblog?.close();
    results?.close();
    await pool?.close();
  }
  o.stdout.off('error', onStdoutError);

  if (o.dryRun) return counts.failed === 0 ? 0 : 1;
  if (stop !== 'EPIPE') {
    const seconds = (performance.now() - started) / 1000;
    const ended = stop === 'SIGINT' || stop === 'SIGTERM' ? ', interrupted' : stop === 'halt' || stop === 'halt-now' ? ', halted' : '';
    const [line, ...failed] = tally.summary(seconds, '', ended);
    say(line!);
    for (const f of failed) o.stderr.write(`${f}\n`);
    if (ioError !== undefined) say(ioError.message);
  }
  const status = stop === undefined ? undefined : STATUS[stop];
  if (status !== undefined) return status;
  return tally.status();
}
