import { closeSync, createReadStream, openSync, statSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { CommandError, SpawnPool, type Command } from '../main/index.js';
import { laneLimit } from '../main/pool.js';
import type { EngineName } from '../main/engine-choice.js';
import { parseJobLine, type Job } from './jobs.js';
import { JobLog, readJobLog, type JobRecord } from './joblog.js';
import { readLines } from '../main/lines.js';
import { Progress, type Counts } from './progress.js';

export interface BatchOptions {
  readonly input: Readable;
  /** The input's path when it is a file: its lines are counted for the ETA. */
  readonly inputPath: string | undefined;
  readonly jobs: number;
  readonly timeoutMs: number | undefined;
  readonly retries: number;
  readonly joblog: string | undefined;
  readonly resume: boolean;
  readonly results: string | undefined;
  readonly capture: boolean;
  readonly haltOnFail: boolean;
  /** Default: native where it loads. */
  readonly engine: EngineName | undefined;
  /** Where the progress line, problems and the summary go. */
  readonly stderr: NodeJS.WriteStream;
}

interface Attempt {
  readonly ok: boolean;
  /** From the child's start to its end (a job held ahead in a worker waits first: not counted). */
  readonly ms: number;
  readonly status: number | null;
  readonly signal: string | null;
  readonly code: string | null;
  readonly message?: string | undefined;
  readonly stdout?: string | undefined;
  readonly stderr?: string | undefined;
}

const JOBS_PER_THREAD = 4;

const text = (v: string | Uint8Array | undefined) => (v === undefined || typeof v === 'string' ? v : Buffer.from(v).toString('utf8'));

/** Counts the newlines of a file without holding it: the ETA's denominator. */
async function countLines(path: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}

/**
 * Runs a batch: one job per input line, `jobs` at once, each logged when it
 * ends. Returns the exit status: 0 when every job succeeded, 1 otherwise,
 * 130 when interrupted.
 */
export async function runBatch(o: BatchOptions): Promise<number> {
  const previous = o.resume && o.joblog !== undefined ? readJobLog(o.joblog) : new Map<string, boolean>();
  const joblog = o.joblog === undefined ? undefined : new JobLog(o.joblog);
  const resultsFd = o.results === undefined ? undefined : openSync(o.results, o.resume ? 'a' : 'w');
  // One worker thread carries a few jobs at a time as fast as several do,
  // and each thread more costs wake-ups on every job (at -j 2, one thread
  // used a fifth less CPU per job than two, and was no slower).
  const threads = Math.min(availableParallelism(), Math.ceil(o.jobs / JOBS_PER_THREAD));
  // On one thread the worker can hold the next jobs and start one the
  // moment another ends, -j still bounding what runs: a job's end then
  // costs no round trip through this thread before the next starts. Not
  // with --halt-on-fail: no job may start before the last one's status is
  // known here.
  const ahead = threads === 1 && !o.haltOnFail ? o.jobs : 0;
  const pool = new SpawnPool({ threads, engine: o.engine, ...(ahead > 0 ? { [laneLimit]: o.jobs } : {}) });
  const counts: Counts = { done: 0, failed: 0, running: 0, skipped: 0 };
  const progress = new Progress(counts, o.stderr, o.stderr.isTTY === true);
  const started = performance.now();
  let skippedFailures = 0;
  let stop: 'interrupt' | 'halt' | undefined;
  const inFlight = new Set<Promise<void>>();
  // One for the batch: an interrupt ends every running job.
  const interrupt = new AbortController();

  if (o.inputPath !== undefined && statSync(o.inputPath).isFile()) {
    countLines(o.inputPath).then((n) => (progress.total = n), () => undefined);
  }

  const say = (line: string) => {
    if (o.stderr.isTTY) o.stderr.write('\r\x1b[K');
    o.stderr.write(`spawnpool run: ${line}\n`);
  };
  const result = (fields: Record<string, unknown>) => {
    if (resultsFd !== undefined) writeSync(resultsFd, `${JSON.stringify(fields)}\n`);
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stop === 'interrupt') {
      // A second one: no more grace.
      void pool.destroy();
      return;
    }
    stop = 'interrupt';
    say(`${signal}: no new jobs; ending ${counts.running} running`);
    interrupt.abort();
    o.input.destroy();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  async function attempt(job: Job, command: Command): Promise<Attempt> {
    let started: number | undefined;
    try {
      // runAsync: it resolves as the child starts, which is when the job starts.
      const running = await command.runAsync({ pool, signal: interrupt.signal, timeoutMs: job.timeoutMs ?? o.timeoutMs });
      started = performance.now();
      counts.running++;
      try {
        const r = await running.wait();
        return { ok: true, ms: performance.now() - started, status: r.status, signal: null, code: null, stdout: text(r.stdout), stderr: text(r.stderr) };
      } finally {
        counts.running--;
      }
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      return {
        ok: false, ms: started === undefined ? 0 : performance.now() - started, status: err.exitStatus ?? null, signal: err.signal ?? null,
        code: err.code, message: err.message, stdout: text(err.stdout), stderr: text(err.stderr),
      };
    }
  }

  async function runJob(job: Job, command: Command): Promise<void> {
    let attempts = 0;
    let ms = 0;
    let last: Attempt;
    do {
      last = await attempt(job, command);
      ms += last.ms;
    } while (!last.ok && ++attempts <= o.retries && stop !== 'interrupt');
    // An interrupted job did not finish: a resumed batch runs it again.
    if (last.code === 'EABORTED' && stop === 'interrupt') return;
    const durationMs = Math.round(ms * 1000) / 1000;
    counts.done++;
    if (!last.ok) counts.failed++;
    const record: JobRecord = {
      id: job.id, line: job.line, ok: last.ok, status: last.status, signal: last.signal, code: last.code,
      durationMs, attempts: Math.min(attempts, o.retries) + 1, endedAt: new Date().toISOString(),
    };
    joblog?.append(record);
    result({
      id: job.id, line: job.line, argv: job.argv, status: last.status, signal: last.signal, code: last.code, durationMs,
      attempts: record.attempts,
      ...(last.message === undefined ? {} : { message: last.message }),
      ...(o.capture ? { stdout: last.stdout ?? '', stderr: last.stderr ?? '' } : {}),
    });
    if (!last.ok && o.haltOnFail && stop === undefined) {
      stop = 'halt';
      say(`job ${job.id} failed (${last.code}): --halt-on-fail, no new jobs`);
    }
  }

  try {
    for await (const { number, text: lineText } of readLines(o.input)) {
      const parsed = parseJobLine(lineText, number, o.capture);
      if (parsed.kind === 'skip') continue;
      if (parsed.kind === 'bad') {
        counts.done++;
        counts.failed++;
        say(`line ${number}: ${parsed.reason}`);
        result({ id: null, line: number, code: 'EBADLINE', message: parsed.reason });
        if (o.haltOnFail) stop ??= 'halt';
        if (stop) break;
        continue;
      }
      const { job } = parsed;
      const before = previous.get(job.id);
      if (before !== undefined) {
        counts.skipped++;
        if (!before) skippedFailures++;
        continue;
      }
      while (inFlight.size >= o.jobs + ahead) await Promise.race(inFlight);
      if (stop) break;
      const running: Promise<void> = runJob(job, parsed.command).finally(() => inFlight.delete(running));
      inFlight.add(running);
    }
  } catch (err) {
    // Destroying the input on SIGINT ends the iteration early; anything else is real.
    if (stop !== 'interrupt') throw err;
  } finally {
    await Promise.allSettled(inFlight);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.stop();
    joblog?.close();
    if (resultsFd !== undefined) closeSync(resultsFd);
    await pool.close();
  }

  const seconds = (performance.now() - started) / 1000;
  say(`${counts.done} jobs: ${counts.done - counts.failed} ok, ${counts.failed} failed` +
    `${counts.skipped ? `, ${counts.skipped} skipped (logged as finished)` : ''}` +
    ` in ${seconds.toFixed(2)} s (${(counts.done / Math.max(seconds, 1e-9)).toFixed(1)}/s)` +
    `${stop === 'interrupt' ? ', interrupted' : stop === 'halt' ? ', halted' : ''}`);
  if (stop === 'interrupt') return 130;
  return counts.failed === 0 && skippedFailures === 0 ? 0 : 1;
}
