#!/usr/bin/env node
// The main thread's own cost per run(), with the workers replaced by an echo
// (bench/echo/worker.js: every run answered at once, nothing spawned), so
// that neither children nor worker threads compete for the cores and the
// number is steady from run to run. The spawn storm measures the same cost
// with real children; this one isolates it for profiling and A/B.
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDir, distDir, describeMachine, fmt, machine, parseArgs, sharedOptions, threadCpu, threadTimes } from './lib.mjs';
import { pathToFileURL } from 'node:url';

const usage = `usage: node bench/main-thread.mjs [options]

  -n, --runs N          runs per measured round (default 20000)
  -c, --concurrency N   runs in flight (default 64)
  -r, --rounds N        measured rounds, after one warm-up round (default 5)
      --json FILE       also write the numbers as JSON
      --dist DIR        the spawnpool build to use (default ../dist)
`;
const opts = parseArgs(process.argv.slice(2), {
  runs: { type: 'number', short: 'n' },
  concurrency: { type: 'number', short: 'c' },
  rounds: { type: 'number', short: 'r' },
  ...sharedOptions('json', 'dist'),
}, usage);
const runs = opts.runs ?? 20000;
const concurrency = opts.concurrency ?? 64;
const rounds = opts.rounds ?? 5;

// A copy of the build whose worker is the echo.
const dist = join(buildDir, 'echo-dist');
cpSync(distDir(opts), dist, { recursive: true });
cpSync(new URL('./echo/worker.js', import.meta.url), join(dist, 'worker.js'));
const sp = await import(pathToFileURL(join(dist, 'index.js')).href);

async function storm(n) {
  let next = 0;
  const lane = async () => {
    while (next++ < n) await new sp.Command('/bin/true').run();
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

await storm(runs);   // warm-up: threads started, code optimised
const perRun = [];
for (let r = 0; r < rounds; r++) {
  const before = threadTimes();
  await storm(runs);
  const cpu = threadCpu(before, threadTimes());
  perRun.push({ main: cpu.main * 1e6 / runs, echo: cpu.library * 1e6 / runs, node: cpu.node * 1e6 / runs });
}
const sorted = perRun.map((p) => p.main).sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)];
console.log(describeMachine(machine()));
console.log(`main thread per run (µs), ${rounds} rounds of ${runs}, ${concurrency} in flight: ` +
  `median ${fmt(median, 2)}, min ${fmt(sorted[0], 2)}, max ${fmt(sorted.at(-1), 2)}; ` +
  `echo workers ${fmt(perRun.map((p) => p.echo).sort((a, b) => a - b)[Math.floor(rounds / 2)], 2)}, ` +
  `Node's threads ${fmt(perRun.map((p) => p.node).sort((a, b) => a - b)[Math.floor(rounds / 2)], 2)}`);
if (opts.json) writeFileSync(opts.json, JSON.stringify({ runs, concurrency, rounds, perRun, median }, null, 2));
process.exit(0);
