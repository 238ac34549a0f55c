import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Command, CommandError, SpawnPool } from '../main/index.js';
import type { EngineName } from '../main/engine-choice.js';
import { LoopDelayMonitor, type LoopDelayReport } from './loop-delay.js';
import { Durations, type Summary } from './stats.js';

/** One command to measure: its label as typed, and its argv. */
export interface BenchTarget {
  readonly label: string;
  readonly argv: readonly string[];
}

export interface BenchOptions {
  readonly commands: readonly BenchTarget[];
  /** Unmeasured runs first, per command and runner. */
  readonly warmup: number;
  /** Measured runs; with neither runs nor durationMs: at least 10 runs and 3 s, as hyperfine does. */
  readonly runs: number | undefined;
  readonly durationMs: number | undefined;
  /** In flight at once (closed loop). */
  readonly concurrency: number;
  /** Starts per second (open loop): each run's time counts from its scheduled start. */
  readonly rate: number | undefined;
  readonly ballastMb: number;
  /** Each command on child_process.spawn too, in the same process. */
  readonly compare: boolean;
  readonly engine: EngineName | undefined;
  /** A terminal for the progress line, or nothing. */
  readonly progress: NodeJS.WritableStream | undefined;
}

export type Runner = 'spawnpool' | 'child_process';

export interface BenchReport {
  readonly command: string;
  readonly argv: readonly string[];
  readonly runner: Runner;
  readonly runs: number;
  readonly failed: number;
  /** Failed runs by error code (EEXIT, ESIGNAL, ETIMEDOUT ...). */
  readonly failures: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly spawnsPerSec: number;
  /** --rate's target, when open-loop. */
  readonly targetRate: number | undefined;
  /** Run times in ms: from the start (closed loop) or the scheduled start (open loop) to the end. */
  readonly time: Summary;
  readonly loopDelay: LoopDelayReport;
  /** The main thread's event-loop utilisation over the measured runs, 0..1. */
  readonly elu: number;
}

/** A command that never started (no such program, no permission): no rate to report. */
export class CannotStart extends Error {
  constructor(readonly command: string, readonly code: string, message: string) {
    super(`cannot start ${command}: ${code}: ${message}`);
  }
}

/** One run: null when it succeeded, else its error code; throws CannotStart for a run that never started. */
type RunOne = () => Promise<string | null>;

const MIN_RUNS = 10;
const MIN_MS = 3000;

function poolRun(cmd: Command, pool: SpawnPool): RunOne {
  return () => cmd.run({ pool }).then(() => null, (err: unknown) => {
    if (!(err instanceof CommandError)) throw err;
    return err.code;
  });
}

/** Errors of a run that never started a child: the command itself is wrong. */
const UNSTARTED = new Set(['ENOENT', 'EACCES', 'ENOEXEC', 'ENOTDIR', 'ENOCWD', 'ELOOP', 'ENAMETOOLONG']);

function childProcessRun(argv: readonly string[]): RunOne {
  return () => new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'ESPAWN'));
    child.once('exit', (code, signal) => resolve(code === 0 ? null : signal !== null ? 'ESIGNAL' : 'EEXIT'));
  });
}

/** Resident memory the host holds, as a server with a big heap would: every page touched. */
function ballast(mb: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let left = mb; left > 0; left -= 64) chunks.push(Buffer.alloc(Math.min(left, 64) * 1024 * 1024, 1));
  return chunks;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class ProgressLine {
  readonly #timer: NodeJS.Timeout | undefined;
  done = 0;

  constructor(private readonly out: NodeJS.WritableStream | undefined, private readonly label: string, private readonly of: string, t0: number) {
    if (out === undefined) return;
    this.#timer = setInterval(() => {
      out.write(`\r\x1b[K${this.label}: ${this.done}${this.of} runs, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }, 200).unref();
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.out!.write('\r\x1b[K');
  }
}

/** Measures one command on one runner: warm-up, then the measured runs, the main loop watched meanwhile. */
async function measure(o: BenchOptions, target: BenchTarget, runner: Runner, runOne: RunOne): Promise<BenchReport> {
  const durations = new Durations();
  const failures: Record<string, number> = {};
  let failed = 0;
  for (let i = 0; i < o.warmup; i++) await runOne();
  const delay = new LoopDelayMonitor();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const total = o.rate !== undefined && o.runs === undefined && o.durationMs !== undefined ? Math.ceil((o.rate * o.durationMs) / 1000) : o.runs;
  const progress = new ProgressLine(o.progress, `${runner === 'spawnpool' ? '' : `${runner}: `}${target.label}`, total === undefined ? '' : `/${total}`, t0);
  const more = (started: number) => {
    const elapsed = performance.now() - t0;
    if (total !== undefined) return started < total;
    if (o.durationMs !== undefined) return elapsed < o.durationMs;
    return started < MIN_RUNS || elapsed < MIN_MS;
  };
  const ended = (from: number, code: string | null) => {
    durations.record(performance.now() - from);
    progress.done++;
    if (code !== null) {
      failed++;
      failures[code] = (failures[code] ?? 0) + 1;
    }
  };
  let started = 0;
  delay.start();
  if (o.rate === undefined) {
    const lane = async () => {
      while (more(started)) {
        started++;
        const from = performance.now();
        ended(from, await runOne());
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, lane));
  } else {
    // Open loop: run i is due at t0 + i / rate whatever the others do, and
    // its time counts from then (a late start is the system's delay, not
    // hidden: no coordinated omission).
    const interval = 1000 / o.rate;
    const inFlight = new Set<Promise<void>>();
    while (more(started)) {
      const due = t0 + started * interval;
      const wait = due - performance.now();
      if (wait > 0) {
        await sleep(wait);
        continue;
      }
      started++;
      const run: Promise<void> = runOne().then((code) => ended(due, code)).finally(() => inFlight.delete(run));
      inFlight.add(run);
    }
    await Promise.all(inFlight);
  }
  const loopDelay = delay.stop();
  const seconds = (performance.now() - t0) / 1000;
  progress.stop();
  const time = durations.summary();
  return {
    command: target.label, argv: target.argv, runner, runs: time.count, failed, failures, seconds,
    spawnsPerSec: time.count / seconds, targetRate: o.rate, time, loopDelay, elu: performance.eventLoopUtilization(elu0).utilization,
  };
}

/** The first run of each command, unmeasured: one that cannot start is an error, not a rate. */
async function probe(target: BenchTarget, cmd: Command, pool: SpawnPool): Promise<void> {
  try {
    await cmd.run({ pool });
  } catch (err) {
    if (err instanceof CommandError && err.pid === undefined && UNSTARTED.has(err.code)) throw new CannotStart(target.label, err.code, err.message);
  }
}

/**
 * `spawnpool bench`: each command through the pool (and with --compare on
 * child_process.spawn), one after the other, in this process.
 */
export async function runBench(o: BenchOptions): Promise<BenchReport[]> {
  const held = o.ballastMb > 0 ? ballast(o.ballastMb) : [];
  const pool = new SpawnPool({ engine: o.engine });
  const reports: BenchReport[] = [];
  try {
    const commands = o.commands.map((t) => Command.fromArgv(t.argv));
    for (const [i, target] of o.commands.entries()) await probe(target, commands[i]!, pool);
    for (const [i, target] of o.commands.entries()) {
      reports.push(await measure(o, target, 'spawnpool', poolRun(commands[i]!, pool)));
      if (o.compare) reports.push(await measure(o, target, 'child_process', childProcessRun(target.argv)));
    }
  } finally {
    await pool.destroy();
  }
  held.length = 0;
  return reports;
}
