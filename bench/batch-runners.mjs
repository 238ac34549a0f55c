#!/usr/bin/env node
// Batch runners side by side: N `/bin/true` jobs through `spawnpool run
// FILE -j J` (the CLI; also as a template, grouped and with -u), `xargs -P J`
// and, when installed, GNU parallel -j J,
// at each J. Each runner is a whole process, started and reaped by
// bench/rusage_run.c: wall time from spawn to exit, the runner's own CPU and
// its jobs' (the children it reaped). The rounds interleave the runners so
// that the machine's noise falls on all of them alike.
// See bench/README.md; `node bench/batch-runners.mjs --help` for the options.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  busyNeighbours, compileC, counts, describeMachine, distDir, fmt, loadAverage, machine, median, parseArgs, runSync, selectContenders,
  sharedOptions, table, waitQuiet,
} from './lib.mjs';

const RUNNERS = ['spawnpool', 'spawnpool-u', 'spawnpool-tpl', 'xargs', 'parallel'];

const usage = `usage: node bench/batch-runners.mjs [options]

  -n, --jobs N          /bin/true jobs per batch (default 5000; --quick 500)
  -j, --parallel J,J    jobs at a time, one set of batches per value (default 2,8)
      --rounds R        rounds, each runner once per round at each J; medians (default 3; --quick 1)
      --only A,B        runners, of: ${RUNNERS.join(', ')} (parallel only when installed)
      --skip A,B        runners to leave out
      --quick           small and fast, for development
      --json FILE       also write every number as JSON
      --dist DIR        the spawnpool build to use (its cli.js; default ../dist)
      --snapshot        copy the build to bench/build/dist first (immune to rebuilds)
      --wait-quiet S    first wait up to S seconds for no test suite / other bench and load < 1.0
`;
const opts = parseArgs(process.argv.slice(2), {
  jobs: { type: 'number', short: 'n' },
  parallel: { type: 'list', short: 'j' },
  rounds: 'number',
  ...sharedOptions('only', 'skip', 'quick', 'json', 'dist', 'snapshot', 'wait-quiet'),
}, usage);
const quick = opts.quick ?? false;
const n = opts.jobs ?? (quick ? 500 : 5000);
const js = counts(opts.parallel ?? ['2', '8'], 'parallel');
const rounds = Math.max(1, opts.rounds ?? (quick ? 1 : 3));
const log = (...a) => console.error(...a);

const parallelVersion = (() => {
  try {
    return runSync('parallel', ['--version']).split('\n')[0];
  } catch {
    return undefined;
  }
})();
const runners = selectContenders(RUNNERS, opts).filter((r) => r !== 'parallel' || parallelVersion);
if (!parallelVersion && !(opts.skip ?? []).includes('parallel')) log('GNU parallel is not installed: left out');
const cli = join(distDir(opts), 'cli.js');
const rusageRun = compileC('rusage_run');

const dir = mkdtempSync(join(tmpdir(), 'spawnpool-batch-bench-'));
const jsonl = join(dir, 'jobs.jsonl');
const plain = join(dir, 'jobs.txt');
writeFileSync(jsonl, '["/bin/true"]\n'.repeat(n));
// One argument per line for parallel and xargs: `true x`, as cheap as `true`.
writeFileSync(plain, 'x\n'.repeat(n));

const LABELS = {
  spawnpool: (j) => `spawnpool run jobs.jsonl -j ${j}`,
  'spawnpool-u': (j) => `spawnpool run -u -j ${j} -- /bin/true < args`,
  'spawnpool-tpl': (j) => `spawnpool run -j ${j} -- /bin/true < args`,
  xargs: (j) => `xargs -P ${j} -n 1 /bin/true < args`,
  parallel: (j) => `parallel -j ${j} /bin/true < args`,
};
const argv = {
  spawnpool: (j) => ['/dev/null', process.execPath, cli, 'run', jsonl, '-j', String(j)],
  // xargs's way: the jobs write to the runner's own stdout.
  'spawnpool-u': (j) => [plain, process.execPath, cli, 'run', '-u', '-j', String(j), '--', '/bin/true'],
  // GNU parallel's way: each job's output grouped (captured, then written).
  'spawnpool-tpl': (j) => [plain, process.execPath, cli, 'run', '-j', String(j), '--', '/bin/true'],
  xargs: (j) => [plain, 'xargs', '-P', String(j), '-n', '1', '/bin/true'],
  parallel: (j) => [plain, 'parallel', '--will-cite', '-j', String(j), '/bin/true'],
};

/** One batch: { seconds, selfCpuSeconds, childrenCpuSeconds, maxRssKiB }. */
function batch(name, j) {
  const r = JSON.parse(runSync(rusageRun, argv[name](j)));
  if (r.status !== 0) throw new Error(`${LABELS[name](j)} exited ${r.status}`);
  return r;
}

if (opts.waitQuiet) await waitQuiet(opts.waitQuiet, 1.0, log);
const info = machine();
const neighbours = busyNeighbours();
const loadBefore = loadAverage();
log(`batch-runners: ${n} × /bin/true, -j ${js.join(',')}, ${rounds} rounds, runners ${runners.join(', ')}`);
log(`machine: ${describeMachine(info)}; load ${loadBefore}`);
if (neighbours.length) log(`warning: other benchmark-disturbing processes are running:\n  ${neighbours.join('\n  ')}`);

const samples = {};   // samples[j][runner] = [batch()]
const startedAt = performance.now();
try {
  for (let round = 0; round < rounds; round++) {
    for (const j of js) {
      samples[j] ??= {};
      for (const name of runners) {
        const r = batch(name, j);
        (samples[j][name] ??= []).push(r);
        log(`  round ${round + 1}  -j ${j}  ${name.padEnd(13)} ${r.seconds.toFixed(2)} s  ${fmt(n / r.seconds, 0)} jobs/s` +
          `  runner CPU ${fmt((r.selfCpuSeconds * 1000) / n, 3)} ms/job, jobs ${fmt((r.childrenCpuSeconds * 1000) / n, 3)} ms/job`);
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const totalSeconds = (performance.now() - startedAt) / 1000;
const loadAfter = loadAverage();

const results = {};
const rows = [];
const targets = [];
for (const j of js) {
  results[j] = {};
  for (const name of runners) {
    const s = samples[j][name];
    const seconds = median(s.map((x) => x.seconds));
    results[j][name] = {
      seconds,
      all: s.map((x) => x.seconds),
      jobsPerSec: n / seconds,
      runnerCpuMsPerJob: (median(s.map((x) => x.selfCpuSeconds)) * 1000) / n,
      jobsCpuMsPerJob: (median(s.map((x) => x.childrenCpuSeconds)) * 1000) / n,
      maxRssMiB: median(s.map((x) => x.maxRssKiB)) / 1024,
    };
  }
  const xargs = results[j].xargs;
  for (const name of runners) {
    const r = results[j][name];
    rows.push([LABELS[name](j), `${fmt(r.seconds, 2)} (${r.all.map((x) => fmt(x, 2)).join(', ')})`, fmt(r.jobsPerSec, 0),
      xargs ? fmt(r.jobsPerSec / xargs.jobsPerSec, 2) : '—', fmt(r.runnerCpuMsPerJob, 3), fmt(r.jobsCpuMsPerJob, 3), fmt(r.maxRssMiB, 0)]);
  }
  for (const name of ['spawnpool', 'spawnpool-u']) {
    const sp = results[j][name];
    if (!sp || !xargs) continue;
    const ratio = sp.jobsPerSec / xargs.jobsPerSec;
    targets.push(`${LABELS[name](j)} ≥ 1.0 × xargs -P at -j ${j}: ${fmt(ratio, 2)} (${fmt(sp.jobsPerSec, 0)} vs ${fmt(xargs.jobsPerSec, 0)} jobs/s) → ` +
      `${ratio >= 1 ? 'MET' : 'MISSED'}${ratio >= 1 ? '' : `; CPU per job: runner ${fmt(sp.runnerCpuMsPerJob * 1000, 0)} µs ` +
      `(xargs ${fmt(xargs.runnerCpuMsPerJob * 1000, 0)}), jobs ${fmt(sp.jobsCpuMsPerJob * 1000, 0)} µs (xargs ${fmt(xargs.jobsCpuMsPerJob * 1000, 0)})`}`);
  }
}

const command = `node ${process.argv.slice(1).map((a) => a.replace(/^.*\/bench\//, 'bench/')).join(' ')}`;
console.log(`\n## batch runners: ${n} × /bin/true at -j ${js.join(' and ')}, median of ${rounds}\n`);
console.log(`\`${command}\` — ${totalSeconds.toFixed(0)} s; load average before ${loadBefore}, after ${loadAfter}` +
  `${neighbours.length ? `; WARNING: ${neighbours.length} test processes were running` : ''}` +
  `${parallelVersion ? `; ${parallelVersion}` : '; GNU parallel not installed'}\n`);
console.log(`Machine: ${describeMachine(info)}.\n`);
console.log('Wall time from spawn to exit; CPU from the runner\'s zombie (/proc/PID/stat): its own, and its jobs\' (children it reaped); ' +
  'USER_HZ ticks, so read it over the whole batch.\n');
console.log(table(['runner', 'median wall s (every round)', 'jobs/s', '× xargs', 'runner CPU ms/job', 'jobs CPU ms/job', 'runner max RSS MiB'], rows));
if (targets.length) console.log(['', 'Targets:', ...targets.map((t) => `- ${t}`)].join('\n'));
if (opts.json) {
  writeFileSync(opts.json, `${JSON.stringify({
    bench: 'batch-runners', command, machine: info, loadBefore, loadAfter, neighbours, n, js, rounds, parallelVersion,
    totalSeconds, results, samples,
  }, null, 2)}\n`);
}
