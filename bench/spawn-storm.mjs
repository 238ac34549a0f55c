#!/usr/bin/env node
// Spawn storms of /bin/true, every contender in this one process run, each
// without and then with 2 GiB of resident Buffers in this (the host) process.
// See bench/README.md; `node bench/spawn-storm.mjs --help` for the options.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  allocateBallast, busyNeighbours, childrenCpuSeconds, compileC, fmt, idleDelay, loadAverage, loadSpawnpool, machine,
  measured, median, parseArgs, SHARED_OPTIONS, rssMiB, table, waitQuiet, describeMachine, selectContenders } from './lib.mjs';

const CONTENDERS = ['c-loop', 'native', 'node', 'child_process', 'execa'];
const LABELS = {
  'c-loop': 'C posix_spawn loop (the limit)',
  native: 'spawnpool, native engine',
  node: "spawnpool, 'node' engine",
  child_process: 'child_process.spawn, main thread',
  execa: 'execa, main thread',
};

const usage = `usage: node bench/spawn-storm.mjs [options]

  -n, --runs N          spawns per storm (default 5000; --quick 500)
  -c, --concurrency N   spawns in flight (default 64)
  -t, --threads N       spawnpool threads and C loop threads (default: cores, ${availableParallelism()})
      --only A,B        contenders to run, of: ${CONTENDERS.join(', ')}
      --skip A,B        contenders to leave out
      --heaps 0,2048    host ballast sizes in MiB, one storm set per size (default 0,2048)
      --idle-ms MS      idle measurement before each storm (default 2000; --quick 500)
      --max-seconds S   stop launching after S seconds; the rate counts what ran (default 20; --quick 5)
      --max-seconds-key S  the same for c-loop and native (default 90; --quick 10)
      --repeat R        rounds of storms per heap (each contender once per round); medians reported (default 1)
      --repeat-key R    rounds for the two the targets compare, c-loop and native (default 2; --quick 1)
      --wait-quiet S    first wait up to S seconds for no test suite / other bench and load < 1.0
      --program PATH    what to spawn (default /bin/true)
      --quick           small and fast, for development
      --json FILE       also write every number as JSON
      --dist DIR        the spawnpool build to use (default ../dist)
      --snapshot        copy the build to bench/build/dist first (immune to rebuilds)
`;

const opts = parseArgs(process.argv.slice(2), {
  runs: { type: 'number', short: 'n' },
  concurrency: { type: 'number', short: 'c' },
  heaps: 'list',
  'idle-ms': 'number',
  'max-seconds': 'number',
  'max-seconds-key': 'number',
  repeat: 'number',
  'repeat-key': 'number',
  program: 'string',
  ...SHARED_OPTIONS,
}, usage);

const quick = opts.quick ?? false;
const runs = opts.runs ?? (quick ? 500 : 5000);
const concurrency = opts.concurrency ?? 64;
const threads = opts.threads ?? availableParallelism();
const idleMs = opts.idleMs ?? (quick ? 500 : 2000);
const maxSeconds = opts.maxSeconds ?? (quick ? 5 : 20);
const maxSecondsKey = opts.maxSecondsKey ?? (quick ? 10 : 90);
const repeat = Math.max(1, opts.repeat ?? 1);
const repeatKey = Math.max(repeat, opts.repeatKey ?? (quick ? 1 : 2));
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
    case 'native':
    case 'node': {
      const pool = new sp.SpawnPool({ threads, engine: name });
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

async function runNodeContender(name) {
  const c = makeContender(name);
  try {
    // Warm-up: workers started, code paths compiled (at most 3 s: with ballast the slow ones are slow).
    await storm(c.runOne, 2 * concurrency, performance.now() + 3000);
    const idle = await idleDelay(idleMs);
    const cutime0 = childrenCpuSeconds();
    const cap = name === 'native' ? maxSecondsKey : maxSeconds;
    const m = await measured(() => storm(c.runOne, runs, performance.now() + cap * 1000));
    const done = m.value;
    return {
      done,
      capped: done < runs,
      seconds: m.seconds,
      spawnsPerSec: done / m.seconds,
      idle,
      delay: m.delay,
      elu: m.elu,
      cpuMsPerSpawn: (m.cpuSeconds * 1000) / done,
      childCpuMsPerSpawn: ((childrenCpuSeconds() - cutime0) * 1000) / done,
    };
  } finally {
    await c.close();
  }
}

/** Starts the C loop; `ready` resolves once its ballast is written, `result` with its JSON line. */
function startCLoop(ballastMiB) {
  const child = spawn(cLoop, [String(runs), String(concurrency), String(threads), String(ballastMiB), program], {
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
  return { ready, result };
}

async function runCLoopContender(ballastMiB) {
  // Not a Node contender: the host loop is idle, but its delay while the C
  // loop saturates the cores (its ballast written) shows what CPU
  // contention alone costs.
  const idle = await idleDelay(idleMs);
  const c = startCLoop(ballastMiB);
  await c.ready;
  const m = await measured(() => c.result);
  const r = m.value;
  return {
    done: r.count,
    capped: false,
    seconds: r.seconds,
    spawnsPerSec: r.spawnsPerSec,
    idle,
    delay: m.delay,       // the host's idle loop, during the C storm
    elu: NaN,
    cpuMsPerSpawn: (r.cpuSeconds * 1000) / r.count,
    childCpuMsPerSpawn: (r.childrenCpuSeconds * 1000) / r.count,
    rssMiB: r.rssMiB,
  };
}

function summarise(samples) {
  if (samples.length === 1) return samples[0];
  const pick = (f) => median(samples.map(f));
  return {
    done: pick((s) => s.done),
    capped: samples.some((s) => s.capped),
    seconds: pick((s) => s.seconds),
    spawnsPerSec: pick((s) => s.spawnsPerSec),
    idle: { p50: pick((s) => s.idle.p50), p99: pick((s) => s.idle.p99), max: pick((s) => s.idle.max) },
    delay: {
      p50: pick((s) => s.delay.p50), p99: pick((s) => s.delay.p99), max: pick((s) => s.delay.max),
      samples: pick((s) => s.delay.samples), stall: pick((s) => s.delay.stall),
    },
    elu: pick((s) => s.elu),
    cpuMsPerSpawn: pick((s) => s.cpuMsPerSpawn),
    childCpuMsPerSpawn: pick((s) => s.childCpuMsPerSpawn),
    rssMiB: samples[0].rssMiB,
    samples: samples.map((s) => s.spawnsPerSec),
  };
}

// ---- the run ---------------------------------------------------------------

if (opts.waitQuiet) await waitQuiet(opts.waitQuiet, 1.0, log);
const info = machine();
const neighbours = busyNeighbours();
const loadBefore = loadAverage();
log(`spawn-storm: ${runs} × ${program}, ${concurrency} in flight, ${threads} threads, heaps ${heaps.join(',')} MiB, contenders ${contenders.join(', ')}`);
log(`machine: ${describeMachine(info)}; load ${loadBefore}`);
if (neighbours.length) log(`warning: other benchmark-disturbing processes are running:\n  ${neighbours.join('\n  ')}`);

const results = {};
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
  const samples = Object.fromEntries(contenders.map((c) => [c, []]));
  for (let round = 0; round < repeatKey; round++) {
    for (const name of contenders) {
      if (round >= repeat && !KEY.includes(name)) continue;
      const r = name === 'c-loop' ? await runCLoopContender(heap) : await runNodeContender(name);
      r.hostRssMiB = rssMiB();
      samples[name].push(r);
      log(`  heap ${String(heap).padStart(4)} MiB  ${name.padEnd(13)} ${fmt(r.spawnsPerSec).padStart(8)} spawns/s` +
        `${r.capped ? ` (capped: ${r.done} in ${r.seconds.toFixed(1)} s)` : ''}` +
        `  delay p50 ${fmt(r.delay.p50, 2)} p99 ${fmt(r.delay.p99, 2)} max ${fmt(r.delay.max, 1)} ms` +
        ` (${r.delay.samples} samples, longest gap ${fmt(r.delay.stall, 1)} ms; idle p99 ${fmt(r.idle.p99, 2)})  ELU ${fmt(r.elu, 2)}` +
        `  host CPU ${fmt(r.cpuMsPerSpawn, 3)} ms/spawn, children ${fmt(r.childCpuMsPerSpawn, 3)}`);
    }
  }
  for (const name of contenders) results[heap][name] = summarise(samples[name]);
  if (samples.native?.length && samples['c-loop']?.length) {
    // Round by round, each native storm against the C loop just before it: drift cancels.
    const n = Math.min(samples.native.length, samples['c-loop'].length);
    const perRound = Array.from({ length: n }, (_, i) => samples.native[i].spawnsPerSec / samples['c-loop'][i].spawnsPerSec);
    results[heap].native.perRoundRatios = perRound;
  }
}
void ballast;
const totalSeconds = (performance.now() - startedAt) / 1000;
const loadAfter = loadAverage();

// ---- report ----------------------------------------------------------------

const heapLabel = (h) => (h === 0 ? 'no ballast' : `${h >= 1024 ? `${h / 1024} GiB` : `${h} MiB`} resident`);
/** Too few timer runs for percentiles: the loop was blocked nearly throughout. */
const noSample = (r) => (r.delay.samples >= 20 ? undefined : `n/a (${r.delay.samples} samples)`);
const rows = [];
for (const heap of heaps) {
  const limit = results[heap]['c-loop']?.spawnsPerSec;
  for (const name of contenders) {
    const r = results[heap][name];
    const isC = name === 'c-loop';
    rows.push([
      `${LABELS[name]}, ${heapLabel(heap)}`,
      `${fmt(r.spawnsPerSec, 0)}${r.capped ? ` (${r.done} in ${fmt(r.seconds)} s)` : ''}`,
      limit ? fmt(r.spawnsPerSec / limit, 2) : '—',
      isC ? '—' : noSample(r) ?? fmt(r.delay.p50, 2),
      isC ? '—' : noSample(r) ?? fmt(r.delay.p99, 2),
      isC ? '—' : fmt(r.delay.stall, 0),
      isC ? '—' : fmt(r.idle.p99, 2),
      isC ? '—' : noSample(r) ?? fmt(r.delay.p99 - r.idle.p99, 2),
      isC ? '—' : fmt(r.elu, 2),
      fmt(r.cpuMsPerSpawn, 3),
      fmt(r.childCpuMsPerSpawn, 3),
    ]);
  }
}
const md = [];
md.push(table(
  ['contender', 'spawns/s', '× C loop', 'delay p50 ms', 'delay p99 ms', 'longest stall ms', 'idle p99 ms', 'p99 − idle p99 ms', 'ELU', 'host CPU ms/spawn', 'child CPU ms/spawn'],
  rows,
));
const cNotes = heaps.filter((h) => results[h]['c-loop']).map((h) => {
  const r = results[h]['c-loop'];
  return `host loop idle during the C loop, ${heapLabel(h)}: p99 ${fmt(r.delay.p99, 2)} ms (idle before: ${fmt(r.idle.p99, 2)} ms)`;
});
if (cNotes.length) md.push('', ...cNotes.map((n) => `- ${n}`));

const targets = [];
if (contenders.includes('native')) {
  for (const heap of heaps) {
    const r = results[heap].native;
    const limit = results[heap]['c-loop']?.spawnsPerSec;
    if (limit) {
      const ratio = r.perRoundRatios ? median(r.perRoundRatios) : r.spawnsPerSec / limit;
      const rounds = r.perRoundRatios && r.perRoundRatios.length > 1
        ? ` (median of the per-round ratios ${r.perRoundRatios.map((x) => fmt(x, 3)).join(', ')}; ratio of the medians ${fmt(r.spawnsPerSec / limit, 3)})` : '';
      targets.push(`native ≥ 0.8 × C loop, ${heapLabel(heap)}: ${fmt(ratio, 3)}${rounds} → ${ratio >= 0.8 ? 'MET' : 'MISSED'}`);
    }
    const over = r.delay.p99 - r.idle.p99;
    const control = results[heap]['c-loop']?.delay.p99;
    targets.push(`native p99 delay within 2 ms of idle p99, ${heapLabel(heap)}: +${fmt(over, 2)} ms → ${over <= 2 ? 'MET' : 'MISSED'}` +
      (control ? ` (the idle host loop during the C loop, CPU contention alone: p99 ${fmt(control, 2)} ms; native minus that: ${fmt(r.delay.p99 - control, 2)} ms)` : ''));
  }
}
if (targets.length) md.push('', 'Targets:', ...targets.map((t) => `- ${t}`));

const command = `node ${process.argv.slice(1).map((a) => a.replace(/^.*\/bench\//, 'bench/')).join(' ')}`;
console.log(`\n## spawn-storm: ${runs} × ${program}, ${concurrency} in flight, ${threads} threads\n`);
console.log(`\`${command}\` — ${totalSeconds.toFixed(0)} s; load average before ${loadBefore}, after ${loadAfter}` +
  `${neighbours.length ? `; WARNING: ${neighbours.length} test processes were running` : ''}\n`);
console.log(`Machine: ${describeMachine(info)}.\n`);
console.log(md.join('\n'));

if (opts.json) {
  writeFileSync(opts.json, `${JSON.stringify({
    bench: 'spawn-storm', command, machine: info, loadBefore, loadAfter, neighbours, runs, concurrency, threads, program,
    idleMs, maxSeconds, maxSecondsKey, repeat, repeatKey, heaps, totalSeconds, results,
  }, null, 2)}\n`);
}
