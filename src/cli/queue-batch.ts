import type { Coordinator } from '../distributed/coordinator.js';
import type { QueueConnection } from '../distributed/queue-url.js';
import type { ResultRecord, StreamedResult } from '../distributed/results.js';
import type { SubmittedJob } from '../distributed/submit.js';
import type { BatchOptions } from './batch.js';
import type { Job } from './jobs.js';
import { JobLog, readJobLog, skipLogged, type JobRecord } from './joblog.js';
import { GroupedOutput, outputBytes } from './output.js';
import { Progress } from './progress.js';
import { LineSink, type OutputFileError } from './sink.js';
import { Tally } from './tally.js';

export interface QueueOptions {
  readonly queue: QueueConnection;
  readonly batch: string;
  readonly key: Uint8Array | undefined;
  /** Jobs submitted and not yet logged, at most: bounds Redis whatever the input's length. */
  readonly window: number;
  /** Bytes of stdout and of stderr a result carries, at most. */
  readonly maxOutput: number;
  /** `spawnpool submit`: enqueue every job, collect nothing. */
  readonly submitOnly: boolean;
}

/** Why no new job is submitted. The first three also abort the running ones, which are put back and not logged. */
type Stop = 'SIGINT' | 'SIGTERM' | 'halt-now' | 'halt' | 'ioerror' | 'queue';
const ENDS_RUNNING: ReadonlySet<Stop> = new Set(['SIGINT', 'SIGTERM', 'halt-now']);
const STATUS: Partial<Record<Stop, number>> = { SIGINT: 130, SIGTERM: 143, ioerror: 3, queue: 4 };

const CHUNK = 1000;
const CHUNKS_IN_FLIGHT = 4;
const READ_COUNT = 1000;
const READ_BLOCK_MS = 200;
/** Logged results are synced and deleted from Redis at least this often. */
const SYNC_EVERY_MS = 100;
const WATCH_MS = 1000;
/** A worker not heard from for this long is not counted as seen. */
const WORKER_GONE_MS = 15_000;
/** No result for this long while nothing waits or runs: the queue lost jobs (a Redis restart); they are submitted again. */
const LOST_AFTER_MS = 5000;
/** After a halt or an interrupt, how long the running jobs may take to stop before the queue is drained anyway. */
const STOP_WAIT_MS = 30_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `spawnpool run --queue`: the coordinator. It submits the input's jobs to
 * the batch's queue (no more than `window` unlogged at once), reads the
 * results workers publish, and logs each job once: appended, synced, and
 * only then deleted from Redis, so that a crash anywhere replays results
 * rather than losing them, and a job that ran twice is still one line. The
 * joblog is the batch's record: a job it shows finished is never submitted
 * again (--resume-failed: unless it failed).
 */
export async function runQueued(o: BatchOptions, q: QueueOptions): Promise<number> {
  const { Coordinator: Coord } = await import('../distributed/coordinator.js');
  const logged = o.joblog === undefined ? new Map<string, boolean>() : readJobLog(o.joblog);
  if (q.submitOnly) return submitAll(o, q, logged, await Coord.open({ queue: q.queue, batch: q.batch, key: q.key }));
  // The lease first: a coordinator refused touches no file.
  const coord = await Coord.open({ queue: q.queue, batch: q.batch, key: q.key, onLeaseLost: () => halt('queue', 'lost the batch\'s lease: another coordinator may run it now; stopping') });
  let joblog: JobLog;
  let results: LineSink | undefined;
  try {
    ({ joblog, results } = openLogs(o));
  } catch (err) {
    await coord.close();
    throw err;
  }
  try {
    await coord.resume();
  } catch (err) {
    results?.close();
    joblog.close();
    await coord.close();
    throw err;
  }

  const tally = new Tally();
  const { counts } = tally;
  const live = o.progress !== undefined && o.stderr.isTTY === true;
  const progress = new Progress(counts, o.stderr, live ? o.progress : undefined);
  let total: number | undefined;
  o.total.then((n) => (progress.total = total = n), () => undefined);
  const started = performance.now();
  let reran = 0;
  let stop: Stop | undefined;
  let hurry = false;
  let ioError: OutputFileError | undefined;
  /** Submitted by this run (or earlier ones) and not yet logged, with their place in the input. */
  const queued = new Map<string, { readonly index: number; readonly job: Job }>();
  let waiters: (() => void)[] = [];
  const changed = () => {
    const w = waiters;
    waiters = [];
    for (const wake of w) wake();
  };
  const nextChange = () => new Promise<void>((resolve) => waiters.push(resolve));

  const say = (line: string) => {
    progress.clear();
    o.stderr.write(`spawnpool run: ${line}\n`);
  };
  const endingRunning = () => stop !== undefined && ENDS_RUNNING.has(stop);
  function halt(why: Stop, message?: string): void {
    if (stop !== undefined && (endingRunning() || !ENDS_RUNNING.has(why))) return;
    stop = why;
    if (message !== undefined) say(message);
    if (ENDS_RUNNING.has(why)) o.input?.destroy();
    changed();
  }
  const ioFailed = (err: OutputFileError) => {
    if (ioError !== undefined) return;
    ioError = err;
    halt('ioerror', `${err.message}: no new jobs; the results not logged stay in the queue for --resume`);
  };
  const writeResult = (fields: Record<string, unknown>) => {
    if (results !== undefined && !results.write(`${JSON.stringify(fields)}\n`)) ioFailed(results.failed!);
  };

  let stdoutBroken = false;
  const onStdoutError = () => (stdoutBroken = true);
  o.stdout.on('error', onStdoutError);
  const streams = { stdout: { write: (b: Uint8Array) => stdoutBroken || o.stdout.write(b) }, stderr: o.stderr, beforeWrite: () => progress.clear() };
  const output = new GroupedOutput(streams, o.keepOrder, o.tag);
  // Results of jobs this run did not submit (an earlier run's): no place in this input's order.
  const unordered = new GroupedOutput(streams, false, o.tag);

  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (endingRunning()) {
      hurry = true;
      changed();
      return;
    }
    halt(signal, `${signal}: no new jobs; the running ones go back to the queue for --resume`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  function checkHalt(): void {
    if (stop !== undefined) return;
    const message = tally.haltMessage(o.halt, total, '; the running ones go back to the queue');
    if (message !== undefined) halt(o.halt!.when === 'now' ? 'halt-now' : 'halt', message);
  }

  function badJob(index: number, line: number, id: string | null, reason: string): void {
    const bad = tally.badLine(index, line, id, reason);
    say(bad.say);
    writeResult(bad.result);
    output.dropped(index);
    checkHalt();
  }

  /** One result: logged unless its job already is (it then ran more than once). */
  function logResult(r: ResultRecord): void {
    if (logged.has(r.id)) {
      reran++;
      return;
    }
    logged.set(r.id, r.ok);
    const mine = queued.get(r.id);
    queued.delete(r.id);
    tally.ended(mine?.index ?? Number.MAX_SAFE_INTEGER, `job ${r.id}`, r.ok, r.code, r.message);
    const record: JobRecord = {
      id: r.id, line: r.line, ok: r.ok, status: r.status, signal: r.signal, code: r.code, durationMs: r.durationMs,
      attempts: r.attempts, endedAt: r.endedAt, host: r.host, starts: r.starts,
    };
    if (!joblog.append(record)) ioFailed(joblog.failed!);
    const args = mine?.job.args;
    writeResult({
      id: r.id, line: r.line, ...(args === undefined ? {} : { args }), ...(mine === undefined ? {} : { argv: mine.job.argv(1) }),
      status: r.status, signal: r.signal, code: r.code, durationMs: r.durationMs, attempts: r.attempts, host: r.host, starts: r.starts,
      ...(r.message === undefined ? {} : { message: r.message }),
      ...(o.capture ? {
        stdout: r.stdout ?? '', ...(r.stdoutEncoding === undefined ? {} : { stdoutEncoding: r.stdoutEncoding }),
        stderr: r.stderr ?? '', ...(r.stderrEncoding === undefined ? {} : { stderrEncoding: r.stderrEncoding }),
      } : {}),
      ...(r.truncated === undefined ? {} : { truncated: r.truncated }),
    });
    const out = outputBytes(r.stdout, r.stdoutEncoding);
    const err = outputBytes(r.stderr, r.stderrEncoding);
    if (mine === undefined) unordered.ended(0, r.id, out, err);
    else output.ended(mine.index, args === undefined ? r.id : args.join(' '), out, err);
    checkHalt();
  }

  let lastResultAt = Date.now();
  /** Reads, logs, syncs, and only then deletes: until the stop is done. */
  // Logged and not yet synced, and so not yet deleted from Redis.
  let unacked: StreamedResult[] = [];
  let syncedAt = performance.now();
  async function syncAndAck(): Promise<void> {
    if (unacked.length === 0) return;
    const done = unacked;
    unacked = [];
    syncedAt = performance.now();
    joblog.sync();
    // Not synced, not deleted: the next run logs them.
    if (joblog.failed !== undefined) ioFailed(joblog.failed);
    else await coord.ack(done).catch(() => undefined);
  }
  async function collect(until: () => boolean): Promise<void> {
    while (!until()) {
      let got: StreamedResult[];
      try {
        got = await coord.results(READ_COUNT, unacked.length > 0 ? SYNC_EVERY_MS : READ_BLOCK_MS);
      } catch (err) {
        say(`reading results: ${(err as Error).message}; trying again`);
        await sleep(WATCH_MS);
        continue;
      }
      if (got.length > 0) {
        lastResultAt = Date.now();
        for (const { result } of got) logResult(result);
        unacked.push(...got);
        changed();
      }
      // One fdatasync for many results: a sync per read cost more than the rest of the coordinator.
      if (unacked.length >= READ_COUNT || performance.now() - syncedAt >= SYNC_EVERY_MS || got.length === 0) await syncAndAck();
    }
    await syncAndAck();
  }

  let pending: SubmittedJob[] = [];
  const flushing = new Set<Promise<void>>();
  let flushScheduled = false;
  async function flush(): Promise<void> {
    flushScheduled = false;
    const chunk = pending;
    pending = [];
    if (chunk.length === 0) return;
    const sent: Promise<void> = coord.submit(chunk)
      .catch((err: Error) => halt('queue', `submitting jobs: ${err.message}`))
      .finally(() => flushing.delete(sent));
    flushing.add(sent);
    while (flushing.size >= CHUNKS_IN_FLIGHT) await Promise.race(flushing);
  }

  let told = false;
  async function enqueue(job: Job, index: number): Promise<void> {
    // Queued before any await: a result read meanwhile must find it.
    queued.set(job.id, { index, job });
    if (!told) {
      told = true;
      void coord.workers().then((ws) => {
        if (ws.filter((w) => Date.now() - w.seenAt < WORKER_GONE_MS).length === 0) {
          say(`batch ${q.batch}: no workers yet; start some with: spawnpool worker --queue ${q.queue.shown} --batch ${q.batch} -j N`);
        }
      }, () => undefined);
    }
    pending.push(submitted(job, o, q));
    if (pending.length >= CHUNK) await flush();
    else if (!flushScheduled) {
      // Lines that come in one read go as one chunk; a trickle goes as it comes.
      flushScheduled = true;
      setImmediate(() => void flush());
    }
  }

  // What the queue holds, the workers seen, failed jobs and lost ones, once a second.
  let feedDone = false;
  const watching = (async () => {
    while (!feedDone || (queued.size > 0 && stop === undefined)) {
      try {
        const [c, workers] = await Promise.all([coord.counts(), coord.workers()]);
        counts.running = c.active ?? 0;
        const seen = workers.filter((w) => Date.now() - w.seenAt < WORKER_GONE_MS).length;
        progress.note = `workers ${seen}`;
        if ((c.failed ?? 0) > 0) await coord.sweepFailed();
        await coord.retryRemovals();
        if (stop === undefined && (await coord.isPaused())) halt('queue', `batch ${q.batch} was paused (spawnpool cancel?): stopping`);
        const held = (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.failed ?? 0);
        if (feedDone && stop === undefined && held === 0 && queued.size > 0 && Date.now() - lastResultAt > LOST_AFTER_MS) {
          say(`${queued.size} jobs are neither in the queue nor finished (Redis restarted?): submitting them again`);
          lastResultAt = Date.now();
          await coord.submitLost([...queued.values()].map(({ job }) => submitted(job, o, q)));
        }
      } catch {
        // Redis unreachable for a moment: the next look may do better.
      }
      await Promise.race([sleep(WATCH_MS), nextChange()]);
    }
  })();

  const collecting = collect(() => (feedDone && (queued.size === 0 || stop !== undefined)) || hurry);
  let index = 0;
  try {
    try {
      for await (const item of o.feed) {
        // The window first: from the checks below to the job's queueing, no await, so that no result slips in between.
        while (queued.size >= q.window && stop === undefined) {
          await flush();
          await nextChange();
        }
        if (stop !== undefined) break;
        const at = index++;
        if (item.kind === 'bad') {
          badJob(at, item.line, null, item.reason);
          continue;
        }
        const { job } = item;
        const before = logged.get(job.id);
        if (tally.skips(before, o.resume)) {
          output.dropped(at);
          continue;
        }
        if (queued.has(job.id)) {
          badJob(at, job.line, job.id, `the id is also line ${queued.get(job.id)!.job.line}'s: with --queue, ids must be distinct`);
          continue;
        }
        // Run again (--resume-failed): its new result is the one to log.
        logged.delete(job.id);
        await enqueue(job, at);
      }
    } catch (err) {
      if (!endingRunning()) throw err;
    }
    await flush();
    await Promise.allSettled(flushing);
    feedDone = true;
    changed();
    // One reader at a time: two would read the same entries.
    await collecting;
    if (stop !== undefined) await stopQueue(coord, stop, () => hurry, collect);
    await watching;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    o.stdout.off('error', onStdoutError);
    output.finish();
    progress.stop();
    joblog.close();
    results?.close();
    await coord.close({ finished: stop === undefined && queued.size === 0 });
  }

  const seconds = (performance.now() - started) / 1000;
  const ended = stop === 'SIGINT' || stop === 'SIGTERM' ? ', interrupted' : stop === 'halt' || stop === 'halt-now' ? ', halted' : stop === 'queue' ? ', stopped' : '';
  const [line, ...failed] = tally.summary(seconds, reran ? `, ${reran} results of jobs run more than once (logged once)` : '', ended);
  say(line!);
  if (stop !== undefined && queued.size > 0) say(`${queued.size} jobs not finished: spawnpool run --resume runs them`);
  for (const f of failed) o.stderr.write(`${f}\n`);
  if (ioError !== undefined) say(ioError.message);
  return (stop === undefined ? undefined : STATUS[stop]) ?? tally.status();
}

/** The joblog and the results file, both or neither. */
function openLogs(o: BatchOptions): { joblog: JobLog; results: LineSink | undefined } {
  const joblog = new JobLog(o.joblog!);
  try {
    return { joblog, results: o.results === undefined ? undefined : new LineSink(o.results, true) };
  } catch (err) {
    joblog.close();
    throw err;
  }
}

/** A job as the queue gets it: the batch's limits beside the line's own fields. */
function submitted(job: Job, o: BatchOptions, q: QueueOptions): SubmittedJob {
  return {
    line: job.line,
    fields: {
      id: job.id, argv: job.argv(1), env: job.env, cwd: job.cwd, input: job.input,
      timeoutMs: job.timeoutMs ?? o.timeoutMs, retries: o.retries === 0 ? undefined : o.retries,
      maxOutput: q.maxOutput, capture: o.output === 'group',
    },
  };
}

/** `spawnpool submit`: every job not logged as finished goes on the queue; a later `run --resume` collects. */
async function submitAll(o: BatchOptions, q: QueueOptions, logged: ReadonlyMap<string, boolean>, coord: Coordinator): Promise<number> {
  const say = (line: string) => o.stderr.write(`spawnpool submit: ${line}\n`);
  const seen = new Set<string>();
  let count = 0;
  let skipped = 0;
  let bad = 0;
  try {
    await coord.resume();
    let chunk: SubmittedJob[] = [];
    for await (const item of o.feed) {
      if (item.kind === 'bad') {
        bad++;
        say(`line ${item.line}: ${item.reason}`);
        continue;
      }
      const { job } = item;
      const before = logged.get(job.id);
      if (skipLogged(before, o.resume)) {
        skipped++;
        continue;
      }
      if (seen.has(job.id)) {
        bad++;
        say(`job ${job.id} (line ${job.line}): the id is used twice: with --queue, ids must be distinct`);
        continue;
      }
      seen.add(job.id);
      chunk.push(submitted(job, o, q));
      if (chunk.length < CHUNK) continue;
      await coord.submit(chunk);
      count += chunk.length;
      chunk = [];
    }
    await coord.submit(chunk);
    count += chunk.length;
  } finally {
    await coord.close();
  }
  say(`batch ${q.batch}: ${count} jobs submitted${skipped ? `, ${skipped} skipped (logged as finished)` : ''}${bad ? `, ${bad} bad lines` : ''}; ` +
    `spawnpool run --resume with --queue and --batch ${q.batch} collects them`);
  return bad === 0 ? 0 : 1;
}

/**
 * A halt or an interrupt: nothing starts any more; with the running jobs
 * ended too (`now`, a signal), workers put them back; once none runs, the
 * waiting ones are removed. Results keep being logged meanwhile. What is
 * left unlogged the next run submits again.
 */
async function stopQueue(coord: Coordinator, stop: Stop, hurry: () => boolean, collect: (until: () => boolean) => Promise<void>): Promise<void> {
  if (stop === 'queue' || stop === 'ioerror') return;
  try {
    await coord.pause({ abortRunning: ENDS_RUNNING.has(stop) });
    const deadline = Date.now() + STOP_WAIT_MS;
    let idle = false;
    const watch = (async () => {
      while (!idle && !hurry() && Date.now() < deadline) {
        const c = await coord.counts();
        if ((c.active ?? 0) === 0) idle = true;
        else await sleep(100);
      }
    })();
    await collect(() => idle || hurry() || Date.now() >= deadline);
    await watch;
    await coord.drain();
  } catch {
    // Redis gone: what it still holds, the next run finds.
  }
}
