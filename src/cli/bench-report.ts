import { cpus, totalmem } from 'node:os';
import type { BenchOptions, BenchReport } from './bench.js';
import { ratio } from './stats.js';

/** A time in ms, with the unit that reads best. */
function time(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms >= 1000) return `${(ms / 1000).toFixed(3)} s`;
  if (ms >= 1) return `${ms.toFixed(3)} ms`;
  return `${(ms * 1000).toFixed(1)} µs`;
}

const name = (r: BenchReport) => (r.runner === 'spawnpool' ? r.command : `${r.command} (child_process)`);

function failures(r: BenchReport): string {
  return Object.entries(r.failures).map(([code, n]) => `${code} ${n}`).join(', ');
}

/** The report of one command, as hyperfine lays it out, with the main loop beside it. */
function block(r: BenchReport, n: number, o: BenchOptions): string {
  const t = r.time;
  const mode = r.targetRate !== undefined ? `rate ${r.targetRate}/s` : `concurrency ${o.concurrency}`;
  const lines = [
    `Benchmark ${n}: ${name(r)}`,
    `  Time (mean ± σ):   ${time(t.mean)} ± ${time(t.stddev)}    [${r.runs} runs, ${mode}]`,
    `  Range (min … max): ${time(t.min)} … ${time(t.max)}`,
    `  Percentiles:       p50 ${time(t.p50)}  p90 ${time(t.p90)}  p99 ${time(t.p99)}  p99.9 ${time(t.p999)}`,
    `  Throughput:        ${r.spawnsPerSec.toFixed(1)} spawns/s${r.targetRate === undefined ? '' : ` (target ${r.targetRate}/s)`}`,
    `  Main loop:         delay p99 ${time(r.loopDelay.p99)}, longest stall ${time(r.loopDelay.stall)}, ELU ${(r.elu * 100).toFixed(0)}%`,
  ];
  if (r.failed > 0) lines.push(`  Failed:            ${r.failed} of ${r.runs} (${failures(r)})`);
  return lines.join('\n');
}

/** "A ran 1.23 ± 0.04 × faster than B", against the fastest. */
function summary(reports: readonly BenchReport[]): string[] {
  if (reports.length < 2) return [];
  const fastest = reports.reduce((a, b) => (b.time.mean < a.time.mean ? b : a));
  const lines = ['Summary', `  ${name(fastest)} ran`];
  for (const r of reports) {
    if (r === fastest) continue;
    const q = ratio(fastest.time, r.time);
    lines.push(`    ${q.ratio.toFixed(2)} ± ${q.stddev.toFixed(2)} × faster than ${name(r)}`);
  }
  return lines;
}

export function formatText(reports: readonly BenchReport[], o: BenchOptions): string {
  const parts = reports.map((r, i) => block(r, i + 1, o));
  const lines = summary(reports);
  if (lines.length > 0) parts.push(lines.join('\n'));
  return `${parts.join('\n\n')}\n`;
}

export function formatMarkdown(reports: readonly BenchReport[]): string {
  const fastest = Math.min(...reports.map((r) => r.time.mean));
  const ms = (v: number) => v.toFixed(3);
  const rows = reports.map((r) => {
    const q = ratio({ ...r.time, mean: fastest, stddev: 0 }, r.time);
    return `| \`${name(r)}\` | ${ms(r.time.mean)} ± ${ms(r.time.stddev)} | ${ms(r.time.min)} | ${ms(r.time.max)} | ${ms(r.time.p99)} | ` +
      `${r.spawnsPerSec.toFixed(1)} | ${r.failed} | ${q.ratio === 1 ? '1.00' : `${q.ratio.toFixed(2)} ± ${q.stddev.toFixed(2)}`} |`;
  });
  return ['| Command | Mean [ms] | Min [ms] | Max [ms] | p99 [ms] | spawns/s | failed | Relative |',
    '|:---|---:|---:|---:|---:|---:|---:|---:|', ...rows].join('\n') + '\n';
}

export function formatJson(reports: readonly BenchReport[], o: BenchOptions): string {
  return `${JSON.stringify({
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memoryBytes: totalmem(), node: process.version, platform: process.platform },
    options: {
      warmup: o.warmup, runs: o.runs, durationMs: o.durationMs, concurrency: o.concurrency, rate: o.rate,
      ballastMb: o.ballastMb, compare: o.compare, engine: o.engine ?? 'default',
    },
    results: reports,
  }, null, 2)}\n`;
}
