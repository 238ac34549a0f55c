#!/usr/bin/env node
// Spawn storms of /bin/true, every contender in this one process run, each
// without and then with 2 GiB of resident Buffers in this (the host) process.
// See bench/README.md; `node bench/spawn-storm.mjs --help` for the options.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  allocateBallast, busyNeighbours, childrenCpuSeconds, compileC, counts, fmt, idleDelay, loadAverage, loadSpawnpool, machine,
  measured, parseArgs, SHARED_OPTIONS, rssMiB, table, waitQuiet, describeMachine, selectContenders } from './lib.mjs';

const CONTENDERS = ['c-loop', 'native', 'node', 'child_process', 'execa'];
const LABELS = {
  'c-loop': 'C posix_spawn loop (the limit)',
  native: 'spawnpool, native engine',
  node: "spawnpool, 'node' engine",
  child_process: 'child_process.spawn, main thread',
  execa: 'execa, main thread',
};

const usage = `usage: node bench/spawn-storm.mjs [options]

  -n, --runs N,N        spawns per storm, one storm set per size (default 3000; --quick 300);
                        the issue's two sizes: -n 3000,20000
  -c, --concurrency N   spawns in flight (default 64)
  -t, --threads N       threads of the C loop and of the spawnpool pools (default: cores, ${availableParallelism()});
                        without it the native engine runs on the default pool
      --only A,B        contenders to run, of: ${CONTENDERS.join(', ')}
      --skip A,B        contenders to leave out
      --heaps 0,2048    host ballast sizes in MiB, one storm set per size (default 0,2048)
      --warmup N        spawns in the warm-up storm before the measured one (default: the same as -n)
      --idle-ms MS      idle measurement before each delay storm (default 2000; --quick 500)
      --max-seconds S   per storm, stop launching after S seconds; the rate counts what ran
                        (default 20; --quick 5); the fork-based contenders run at the first -n only
      --max-seconds-key S  the same for native (default 600; --quick 30)
      --wait-quiet S    first wait up to S seconds for no test suite / other bench and load < 1.0
      --program PATH    what to spawn (default /bin/true)
      --quick           small and fast, for development
      --json FILE       also write every number as JSON
      --dist DIR        the spawnpool build to use (default ../dist)
      --snapshot        copy the build to bench/build/dist first (immune to rebuilds)
`;

const opts = parseArgs(process.argv.slice(2), {
  runs: { type: 'list', short: 'n' },
  concurrency: { type: 'number', short: 'c' },
  heaps: 'list',
  warmup: 'number',
  'idle-ms': 'number',
  'max-seconds': 'number',
  'max-seconds-key': 'number',
  program: 'string',
  ...SHARED_OPTIONS,
}, usage);

const quick = opts.quick ?? false;
const sizes = counts(opts.runs ?? [quick ? '300' : '3000'], 'runs');
const concurrency = opts.concurrency ?? 64;
const threads = opts.threads ?? availableParallelism();   // the default pool's size
const idleMs = opts.idleMs ?? (quick ? 500 : 2000);
const maxSeconds = opts.maxSeconds ?? (quick ? 5 : 20);
const maxSecondsKey = opts.maxSecondsKey ?? (quick ? 30 : 600);
const KEY = ['c-loop', 'native'];
const program = opts.program ?? '/bin/true';
const heaps = (opts.heaps ?? ['0', '2048']).map(Number);
const contenders = selectContenders(CONTENDERS, opts);

const log = (...a) => console.error(...a);

// ---- contenders ------------------------------------------------------------

const needsSpawnpool = contenders.includes('native') || contenders.includes('node');
const sp = needsSpawnpool ? await loadSpawnpool(opts) : undefined;
const execa = contenders.includes('execa') ? (await import('execa')).execa : undefined;
const cLoop = contenders.includes('c-loop') ? compileC('posix_spawn_loop') : undefined;

function cpSpawnOnce() {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${program}: ${code ?? signal}`))));
  });
}

/** A contender as { runOne(), close() }: one spawn-and-reap, and cleanup. */
function makeContender(name) {
  switch (name) {
    case 'native': {
      // The default pool unless -t asks for a size: what `run()` gives an application.
      const pool = opts.threads ? new sp.SpawnPool({ threads, engine: 'native' }) : undefined;
      return {
        runOne: () => new sp.Command(program).run(pool ? { pool } : {}),
        close: async () => pool?.destroy(),
      };
    }
    case 'node': {
      const pool = new sp.SpawnPool({ threads, engine: 'node' });
      return {
        runOne: () => new sp.Command(program).run({ pool }),
        close: () => pool.destroy(),
      };
    }
    case 'child_process':
      return { runOne: cpSpawnOnce, close: async () => undefined };
    case 'execa':
      return { runOne: () => execa(program), close: async () => undefined };
    default:
      throw new Error(name);
  }
}

/** `concurrency` lanes, each running one spawn after the other, until `n` launched or the deadline. */
async function storm(runOne, n, deadlineMs) {
  let launched = 0;
  let done = 0;
  const lane = async () => {
    while (launched < n && performance.now() < deadlineMs) {
      launched++;
      await runOne();
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
  return done;
}

/** The CPU numbers of a measured storm, per spawn; `hostCpuSeconds` for the C loop is its own. */
function perSpawn(m, done, hostCpuSeconds, childCpuSeconds) {
  const t = m.threads;
  const perThread = t.main + t.library + t.node;
  return {
    done,
    seconds: m.seconds,
    spawnsPerSec: done / m.seconds,
    elu: m.elu,
    cpuMsPerSpawn: (hostCpuSeconds * 1000) / done,
    childCpuMsPerSpawn: (childCpuSeconds * 1000) / done,
    // This process's threads (for the C loop: the idle host beside it).
    mainUs: (t.main * 1e6) / done,
    mainWakeups: m.wakeups / done,
    libraryUs: (t.library * 1e6) / done,
    nodeUs: (t.node * 1e6) / done,
    unaccountedUs: ((m.cpuSeconds - perThread) * 1e6) / done,
    libraryThreads: t.libraryThreads,
    nodeThreads: t.nodeThreads,
    exitedThreads: t.exited,
  };
}

/**
 * One warm-up storm; the measured storm (CPU: no loop-delay monitor, whose
 * timers would cost the main thread more than the spawns do); then, after an
 * idle window, a storm of the same size with the loop-delay monitor.
 */
async function runNodeContender(name, n) {
  const c = makeContender(name);
  const cap = (name === 'native' ? maxSecondsKey : maxSeconds) * 1000;
  try {
    await storm(c.runOne, opts.warmup ?? n, performance.now() + cap);
    const cutime0 = childrenCpuSeconds();
    const m = await measured(() => storm(c.runOne, n, performance.now() + cap), { delay: false });
    const r = perSpawn(m, m.value, m.cpuSeconds, childrenCpuSeconds() - cutime0);
    r.capped = m.value < n;
    r.idle = await idleDelay(idleMs);
    const d = await measured(() => storm(c.runOne, n, performance.now() + cap));
    r.delay = d.delay;
    r.delayRun = { done: d.value, seconds: d.seconds, spawnsPerSec: d.value / d.seconds, elu: d.elu };
    return r;
  } finally {
    await c.close();
  }
}

/** Runs the C loop; resolves with its JSON line and the host's measurement from its `ready` (ballast written) to its end. */
function cLoopRun(count, ballastMiB, { delay }) {
  const child = spawn(cLoop, [String(count), String(concurrency), String(threads), String(ballastMiB), program], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (s) => {
    out += s;
    if (out.includes('ready\n')) onReady();
  });
  const result = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      onReady();
      if (code !== 0) return reject(new Error(`posix_spawn_loop exited ${code}`));
      resolve(JSON.parse(out.slice(out.indexOf('ready\n') + 6)));
    });
  });
  return ready.then(() => measured(() => result, { delay }));
}

async function runCLoopContender(ballastMiB, n) {
  // Not a Node contender: the host loop is idle, but its delay while the C
  // loop saturates the cores (its ballast written) shows what CPU
  // contention alone costs: the floor of the loop-delay target.
  await cLoopRun(opts.warmup ?? n, 0, { delay: false });   // warm-up: /bin/true's pages and dentries cached
  const m = await cLoopRun(n, ballastMiB, { delay: false });
  const c = m.value;
  const r = perSpawn(m, c.count, c.cpuSeconds, c.childrenCpuSeconds);
  r.seconds = c.seconds;
  r.spawnsPerSec = c.spawnsPerSec;
  r.elu = NaN;
  r.capped = false;
  r.rssMiB = c.rssMiB;
  r.idle = await idleDelay(idleMs);
  const d = await cLoopRun(n, ballastMiB, { delay: true });
  r.delay = d.delay;       // the host's idle loop, during the C storm
  r.delayRun = { done: d.value.count, seconds: d.value.seconds, spawnsPerSec: d.value.spawnsPerSec, elu: NaN };
  return r;
}

// ---- the run ---------------------------------------------------------------

if (opts.waitQuiet) await waitQuiet(opts.waitQuiet, 1.0, log);
const info = machine();
const neighbours = busyNeighbours();
const loadBefore = loadAverage();
log(`spawn-storm: ${sizes.join(', ')} × ${program}, ${concurrency} in flight, ${threads} threads, heaps ${heaps.join(',')} MiB, contenders ${contenders.join(', ')}`);
log(`machine: ${describeMachine(info)}; load ${loadBefore}`);
if (neighbours.length) log(`warning: other benchmark-disturbing processes are running:\n  ${neighbours.join('\n  ')}`);

const results = {};   // results[heap][n][contender]
let ballast = [];
const startedAt = performance.now();
for (const heap of heaps) {
  ballast = [];   // drop the previous size first
  if (heap > 0) {
    const t0 = performance.now();
    ballast = allocateBallast(heap);
    log(`ballast: ${heap} MiB of Buffers written in ${((performance.now() - t0) / 1000).toFixed(1)} s; rss ${rssMiB()} MiB`);
  }
  results[heap] = {};
  for (const n of sizes) {
    results[heap][n] = {};
    for (const name of contenders) {
      if (!KEY.includes(name) && n !== sizes[0]) continue;   // capped anyway
      const r = name === 'c-loop' ? await runCLoopContender(heap, n) : await runNodeContender(name, n);
      r.hostRssMiB = rssMiB();
      results[heap][n][name] = r;
      log(`  heap ${String(heap).padStart(4)} MiB  n ${String(n).padStart(5)}  ${name.padEnd(13)} ${fmt(r.spawnsPerSec).padStart(8)} spawns/s` +
        `${r.capped ? ` (capped: ${r.done} in ${r.seconds.toFixed(1)} s)` : ''}` +
        `  host CPU ${fmt(r.cpuMsPerSpawn, 3)} ms/spawn (main ${fmt(r.mainUs, 0)} µs, pool ${fmt(r.libraryUs, 0)} µs, node ${fmt(r.nodeUs, 0)} µs)` +
        `, children ${fmt(r.childCpuMsPerSpawn, 3)}  ELU ${fmt(r.elu, 2)}` +
        ` | delay storm ${fmt(r.delayRun.spawnsPerSec)} spawns/s, p50 ${fmt(r.delay.p50, 2)} p99 ${fmt(r.delay.p99, 2)} ms` +
        ` (${r.delay.samples} samples, longest gap ${fmt(r.delay.stall, 1)} ms; idle p99 ${fmt(r.idle.p99, 2)})`);
    }
  }
}
void ballast;
const totalSeconds = (performance.now() - startedAt) / 1000;
const loadAfter = loadAverage();

// ---- report ----------------------------------------------------------------

const heapLabel = (h) => (h === 0 ? 'no ballast' : `${h >= 1024 ? `${h / 1024} GiB` : `${h} MiB`} resident`);
/** Too few timer runs for percentiles: the loop was blocked nearly throughout. */
const noSample = (r) => (r.delay.samples >= 20 ? undefined : `n/a (${r.delay.samples} samples)`);
const cpuRows = [];
const delayRows = [];
for (const heap of heaps) {
  for (const n of sizes) {
    const set = results[heap][n];
    const c = set['c-loop'];
    for (const name of contenders) {
      const r = set[name];
      if (!r) continue;
      const label = `${LABELS[name]}, ${heapLabel(heap)}`;
      const isC = name === 'c-loop';
      cpuRows.push([
        label, n,
        `${fmt(r.spawnsPerSec, 0)}${r.capped ? ` (${r.done} in ${fmt(r.seconds)} s)` : ''}`,
        c ? fmt(r.spawnsPerSec / c.spawnsPerSec, 2) : '—',
        fmt(r.cpuMsPerSpawn, 3),
        c ? fmt(r.cpuMsPerSpawn / c.cpuMsPerSpawn, 2) : '—',
        fmt(r.mainUs, 1),
        isC ? '—' : fmt(r.mainWakeups, 3),
        isC ? '—' : `${fmt(r.libraryUs, 0)} (${r.libraryThreads})`,
        fmt(r.nodeUs, 1),
        fmt(r.childCpuMsPerSpawn, 3),
        isC ? '—' : fmt(r.elu, 2),
      ]);
      delayRows.push([
        label, n,
        fmt(r.delayRun.spawnsPerSec, 0),
        noSample(r) ?? fmt(r.delay.p50, 2),
        noSample(r) ?? fmt(r.delay.p99, 2),
        isC || !c || noSample(r) ? '—' : fmt(r.delay.p99 - c.delay.p99, 2),
        fmt(r.delay.stall, 0),
        fmt(r.idle.p99, 2),
      ]);
    }
  }
}
const md = [];
md.push('Measured storm (after one warm-up storm; no loop-delay monitor). Host CPU: process.cpuUsage(), all threads ' +
  '(for the C loop: its own getrusage); per thread: /proc/self/task/*/schedstat, µs per command; main wake-ups: the ' +
  "main thread's voluntary context switches (/proc/self/task/PID/status) per command. For the C loop row " +
  'the thread columns are this host process, idle beside it.', '');
md.push(table(
  ['contender', 'n', 'spawns/s', '× C loop', 'host CPU ms/spawn', '× C loop', 'main thread µs/cmd', 'main wake-ups/cmd', 'spawnpool threads µs/cmd (threads)',
    "Node's threads µs/cmd", 'child CPU ms/spawn', 'ELU'],
  cpuRows,
));
md.push('', 'Delay storm (the same size, right after, loop-delay monitor on; 1 ms resolution). For the C loop: this ' +
  "host's idle loop while the C loop runs, the contention floor.", '');
md.push(table(
  ['contender', 'n', 'spawns/s', 'delay p50 ms', 'delay p99 ms', 'p99 − C-loop floor ms', 'longest stall ms', 'idle p99 ms'],
  delayRows,
));

/** Where a command's host CPU went, per thread, µs. */
const breakdown = (r) => `main ${fmt(r.mainUs, 1)} µs, spawnpool threads ${fmt(r.libraryUs, 1)} µs (${r.libraryThreads}), ` +
  `Node's threads ${fmt(r.nodeUs, 1)} µs, process.cpuUsage() minus these ${fmt(r.unaccountedUs, 1)} µs` +
  `${r.exitedThreads ? ` (${r.exitedThreads} threads exited)` : ''}; children ${fmt(r.childCpuMsPerSpawn * 1000, 0)} µs`;
const verdict = (ok) => (ok ? 'MET' : 'MISSED');
const targets = [];
if (contenders.includes('native') && contenders.includes('c-loop')) {
  for (const heap of heaps) {
    for (const n of sizes) {
      const r = results[heap][n].native;
      const c = results[heap][n]['c-loop'];
      const where = `n ${n}, ${heapLabel(heap)}`;
      const rate = r.spawnsPerSec / c.spawnsPerSec;
      targets.push(`spawns/s ≥ 0.9 × C loop, ${where}: ${fmt(rate, 3)} (${fmt(r.spawnsPerSec, 0)} vs ${fmt(c.spawnsPerSec, 0)}/s) → ${verdict(rate >= 0.9)}`);
      targets.push(`main-thread CPU ≤ 10 µs per command, ${where}: ${fmt(r.mainUs, 1)} µs → ${verdict(r.mainUs <= 10)}` +
        `${r.mainUs <= 10 ? '' : `; per command: ${breakdown(r)}`}`);
      const cpu = r.cpuMsPerSpawn / c.cpuMsPerSpawn;
      targets.push(`host CPU ≤ 2.5 × C loop's per spawn, ${where}: ${fmt(r.cpuMsPerSpawn * 1000, 0)} vs ${fmt(c.cpuMsPerSpawn * 1000, 0)} µs = ` +
        `${fmt(cpu, 2)} × → ${verdict(cpu <= 2.5)}${cpu <= 2.5 ? '' : `; per command: ${breakdown(r)}`}`);
      const bound = c.delay.p99 + 1;
      const okDelay = r.delay.p99 <= bound;   // NaN (no samples: blocked throughout) is a miss
      targets.push(`main-loop delay p99 ≤ C-loop floor + 1 ms, ${where}: ${fmt(r.delay.p99, 2)} ms vs ${fmt(c.delay.p99, 2)} + 1 = ` +
        `${fmt(bound, 2)} ms → ${verdict(okDelay)}${okDelay ? '' : ` (+${fmt(r.delay.p99 - c.delay.p99, 2)} ms over the floor; ` +
        `idle p99 ${fmt(r.idle.p99, 2)} ms; main thread in the measured storm: ${fmt(r.mainUs, 1)} µs CPU per command, ELU ${fmt(r.elu, 2)})`}`);
    }
  }
}
if (targets.length) md.push('', 'Targets:', ...targets.map((t) => `- ${t}`));

const command = `node ${process.argv.slice(1).map((a) => a.replace(/^.*\/bench\//, 'bench/')).join(' ')}`;
console.log(`\n## spawn-storm: ${sizes.join(' and ')} × ${program}, ${concurrency} in flight, ${threads} threads` +
  `${opts.threads ? '' : ' (native: the default pool)'}\n`);
console.log(`\`${command}\` — ${totalSeconds.toFixed(0)} s; load average before ${loadBefore}, after ${loadAfter}` +
  `${neighbours.length ? `; WARNING: ${neighbours.length} test processes were running` : ''}\n`);
console.log(`Machine: ${describeMachine(info)}.\n`);
console.log(md.join('\n'));

if (opts.json) {
  writeFileSync(opts.json, `${JSON.stringify({
    bench: 'spawn-storm', command, machine: info, loadBefore, loadAfter, neighbours, sizes, concurrency, threads, program,
    warmup: opts.warmup ?? 'same as n', idleMs, maxSeconds, maxSecondsKey, heaps, totalSeconds, results,
  }, null, 2)}\n`);
}
