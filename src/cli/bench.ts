import { spawn } from 'node:child_process';
import { createHistogram, monitorEventLoopDelay, performance, type RecordableHistogram } from 'node:perf_hooks';
import { Command, SpawnPool } from '../main/index.js';
import type { EngineName } from '../main/engine-choice.js';

export interface BenchOptions {
  readonly runs: number;
  readonly concurrency: number;
  readonly ballastMb: number;
  readonly compare: boolean;
  readonly argv: readonly string[];
  readonly engine: EngineName | undefined;
  readonly out: NodeJS.WritableStream;
}

export interface StormReport {
  readonly name: string;
  readonly runs: number;
  readonly failed: number;
  readonly spawnsPerSec: number;
  /** Run latency (submit to settled), ms. */
  readonly latency: { p50: number; p90: number; p99: number };
  /** Main-loop delay during the storm, ms. */
  readonly loopDelay: { p50: number; p99: number; max: number };
  /** The main thread's event-loop utilisation over the storm, 0..1. */
  readonly elu: number;
}

const ms = (h: RecordableHistogram | ReturnType<typeof monitorEventLoopDelay>, p: number) => h.percentile(p) / 1e6;

/** Runs `runs` starts of one runner, `concurrency` in flight, measuring the main thread meanwhile. */
async function storm(name: string, o: BenchOptions, runOne: () => Promise<boolean>): Promise<StormReport> {
  const latency = createHistogram();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let started = 0;
  let failed = 0;
  const elu0 = performance.eventLoopUtilization();
  delay.enable();
  const t0 = performance.now();
  const lane = async () => {
    while (started < o.runs) {
      started++;
      const s = process.hrtime.bigint();
      if (!(await runOne())) failed++;
      latency.record(process.hrtime.bigint() - s || 1n);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.runs) }, lane));
  const seconds = (performance.now() - t0) / 1000;
  delay.disable();
  const elu = performance.eventLoopUtilization(elu0).utilization;
  return {
    name, runs: o.runs, failed, spawnsPerSec: o.runs / seconds,
    latency: { p50: ms(latency, 50), p90: ms(latency, 90), p99: ms(latency, 99) },
    loopDelay: { p50: ms(delay, 50), p99: ms(delay, 99), max: delay.max / 1e6 },
    elu,
  };
}

/** Resident memory the host holds, as a server with a big heap would: every page touched. */
function ballast(mb: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let left = mb; left > 0; left -= 64) chunks.push(Buffer.alloc(Math.min(left, 64) * 1024 * 1024, 1));
  return chunks;
}

function childProcessRun(argv: readonly string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

function format(r: StormReport): string {
  const f = (n: number) => n.toFixed(2);
  return `${r.name.padEnd(24)} ${r.spawnsPerSec.toFixed(0).padStart(7)}/s  ` +
    `latency p50 ${f(r.latency.p50)} p90 ${f(r.latency.p90)} p99 ${f(r.latency.p99)} ms  ` +
    `loop delay p50 ${f(r.loopDelay.p50)} p99 ${f(r.loopDelay.p99)} max ${f(r.loopDelay.max)} ms  ` +
    `ELU ${(r.elu * 100).toFixed(0)}%${r.failed ? `  FAILED ${r.failed}` : ''}`;
}

/** `spawnpool bench`: a spawn storm through the pool, and optionally child_process.spawn beside it. */
export async function runBench(o: BenchOptions): Promise<StormReport[]> {
  const held = o.ballastMb > 0 ? ballast(o.ballastMb) : [];
  const pool = new SpawnPool({ engine: o.engine });
  const reports: StormReport[] = [];
  const out = (line: string) => o.out.write(`${line}\n`);
  out(`spawnpool bench: ${o.runs} x ${o.argv.join(' ')}, ${o.concurrency} in flight, ` +
    `${o.ballastMb} MB ballast, rss ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)} MB`);
  try {
    const cmd = Command.fromArgv(o.argv);
    // Warm the pool: threads started, addon loaded.
    await Promise.all(Array.from({ length: 8 }, () => cmd.run({ pool }).catch(() => undefined)));
    reports.push(await storm('spawnpool', o, () => cmd.run({ pool }).then(() => true, () => false)));
    out(format(reports[0]!));
    if (o.compare) {
      reports.push(await storm('child_process.spawn', o, () => childProcessRun(o.argv)));
      out(format(reports[1]!));
      out(`ratio spawnpool / child_process.spawn: ${(reports[0]!.spawnsPerSec / reports[1]!.spawnsPerSec).toFixed(2)}x spawns/s`);
    }
  } finally {
    await pool.destroy();
  }
  held.length = 0;
  return reports;
}
