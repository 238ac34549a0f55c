#!/usr/bin/env node
// Capture throughput: a child writes 1 GiB to stdout; spawnpool captures it
// (captureOutput, encoding 'buffer') against the rate of the same producer
// piped into `cat > /dev/null` through a real pipe (a FIFO; no shell).
// See bench/README.md; `node bench/capture.mjs --help` for the options.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  busyNeighbours, compileC, describeMachine, fmt, GiB, loadAverage, waitQuiet, loadSpawnpool, machine, measured, median, MiB, parseArgs, SHARED_OPTIONS, table, selectContenders } from './lib.mjs';

const CONTENDERS = ['cat', 'c-capture', 'c-capture-thp', 'native', 'node', 'child_process'];
const LABELS = {
  cat: 'producer | cat > /dev/null (pipe rate, the baseline)',
  'c-capture': 'producer | C reader into one buffer, 4 KiB pages (in-memory limit)',
  'c-capture-thp': 'producer | C reader into one buffer, MADV_HUGEPAGE',
  native: 'spawnpool native, captureOutput buffer',
  node: "spawnpool 'node' engine, captureOutput buffer",
  child_process: 'child_process.spawn, main thread, chunks + Buffer.concat',
};

const usage = `usage: node bench/capture.mjs [options]

      --bytes N         bytes the child writes (default 1073741824; --quick 268435456)
      --chunk N         the producer's write size (default 1048576)
      --rounds R        rounds; each runs every contender once, medians reported (default 2; --quick 1)
  -t, --threads N       spawnpool threads (default: cores, ${availableParallelism()})
      --only A,B        contenders to run, of: ${CONTENDERS.join(', ')}
      --skip A,B        contenders to leave out
      --quick           small and fast, for development
      --json FILE       also write every number as JSON
      --dist DIR        the spawnpool build to use (default ../dist)
      --snapshot        copy the build to bench/build/dist first (immune to rebuilds)
      --wait-quiet S    first wait up to S seconds for no test suite / other bench and load < 1.0
`;

const opts = parseArgs(process.argv.slice(2), {
  bytes: 'number',
  chunk: 'number',
  rounds: 'number',
  ...SHARED_OPTIONS,
}, usage);

const quick = opts.quick ?? false;
const bytes = opts.bytes ?? (quick ? 256 * MiB : GiB);
const chunk = opts.chunk ?? MiB;
const rounds = Math.max(1, opts.rounds ?? (quick ? 1 : 2));
const threads = opts.threads ?? availableParallelism();
const contenders = selectContenders(CONTENDERS, opts);
const log = (...a) => console.error(...a);

const producer = compileC('producer');
const captureReader = compileC('capture_reader');
const producerArgs = [String(bytes), String(chunk)];
const catPath = ['/usr/bin/cat', '/bin/cat'].find((p) => spawnSync(p, ['--version'], { stdio: 'ignore' }).status === 0);
if (contenders.includes('cat') && !catPath) throw new Error('cat not found');
const sp = contenders.includes('native') || contenders.includes('node') ? await loadSpawnpool(opts) : undefined;

function exited(child, name) {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${name} ended with ${code ?? signal}`))));
  });
}

// ---- contenders ------------------------------------------------------------

/**
 * producer -> FIFO -> reader (cat > /dev/null, or the C capture reader).
 * A FIFO is a pipe(2); child_process's own stdio pipes are socketpairs.
 */
async function pipeline(reader, readerArgs) {
  const dir = mkdtempSync(join(tmpdir(), 'spawnpool-bench-'));
  try {
    const fifo = join(dir, 'pipe');
    if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('mkfifo failed');
    // Each open blocks until the other end is opened: open both at once (libuv threadpool).
    const [r, w] = await Promise.all([open(fifo, 'r'), open(fifo, 'w')]);
    const devnull = openSync('/dev/null', 'w');
    const m = await measured(async () => {
      const p = spawn(producer, producerArgs, { stdio: ['ignore', w.fd, 'inherit'] });
      const c = spawn(reader, readerArgs, { stdio: [r.fd, devnull, 'inherit'] });
      // Ours closed, so that cat sees EOF when the producer is done.
      await Promise.all([w.close(), r.close()]);
      await Promise.all([exited(p, 'producer'), exited(c, reader)]);
      return bytes;
    });
    closeSync(devnull);
    return m;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkBytes(buf) {
  if (buf.byteLength !== bytes) throw new Error(`captured ${buf.byteLength} bytes, expected ${bytes}`);
  // The producer writes 'a' + i % 26 in every chunk.
  for (const at of [0, 1, chunk - 1, bytes - 1]) {
    if (at >= bytes) continue;
    if (buf[at] !== 97 + ((at % chunk) % 26)) throw new Error(`captured byte ${at} is wrong`);
  }
}

function spawnpoolCapture(pool) {
  return measured(async () => {
    const r = await new sp.Command(producer, ...producerArgs)
      .captureOutput({ encoding: 'buffer' })
      .maxBuffer(bytes + 64 * MiB)
      .run({ pool });
    checkBytes(r.stdout);
    return r.stdout.byteLength;
  });
}

function cpCapture() {
  return measured(async () => {
    const child = spawn(producer, producerArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    await exited(child, 'producer');
    const all = Buffer.concat(chunks);
    checkBytes(all);
    return all.length;
  });
}

// ---- the run ---------------------------------------------------------------

if (opts.waitQuiet) await waitQuiet(opts.waitQuiet, 1.0, log);
const info = machine();
const neighbours = busyNeighbours();
const loadBefore = loadAverage();
log(`capture: ${bytes} bytes in ${chunk}-byte writes, ${rounds} rounds, contenders ${contenders.join(', ')}`);
log(`machine: ${describeMachine(info)}; load ${loadBefore}`);
if (neighbours.length) log(`warning: other benchmark-disturbing processes are running:\n  ${neighbours.join('\n  ')}`);

const pools = {};
for (const engine of ['native', 'node']) {
  if (!contenders.includes(engine)) continue;
  pools[engine] = new sp.SpawnPool({ threads, engine });
  await new sp.Command('/bin/true').run({ pool: pools[engine] });   // workers up
}

const samples = Object.fromEntries(contenders.map((c) => [c, []]));
const startedAt = performance.now();
for (let round = 0; round < rounds; round++) {
  for (const name of contenders) {
    const m = name === 'cat' ? await pipeline(catPath, [])
      : name === 'c-capture' ? await pipeline(captureReader, [String(bytes + MiB)])
      : name === 'c-capture-thp' ? await pipeline(captureReader, [String(bytes + MiB), 'huge'])
      : name === 'child_process' ? await cpCapture()
      : await spawnpoolCapture(pools[name]);
    const s = { mbPerSec: bytes / m.seconds / 1e6, seconds: m.seconds, delay: m.delay, elu: m.elu, cpuSeconds: m.cpuSeconds };
    samples[name].push(s);
    log(`  round ${round + 1} ${name.padEnd(13)} ${fmt(s.mbPerSec, 0).padStart(7)} MB/s  ${s.seconds.toFixed(3)} s` +
      `  loop delay p99 ${fmt(s.delay.p99, 2)} max ${fmt(s.delay.max, 1)} ms  ELU ${fmt(s.elu, 2)}  host CPU ${s.cpuSeconds.toFixed(2)} s`);
    globalThis.gc?.();
  }
}
for (const pool of Object.values(pools)) await pool.destroy();
const totalSeconds = (performance.now() - startedAt) / 1000;
const loadAfter = loadAverage();

// ---- report ----------------------------------------------------------------

const results = {};
for (const name of contenders) {
  const s = samples[name];
  results[name] = {
    mbPerSec: median(s.map((x) => x.mbPerSec)),
    all: s.map((x) => +x.mbPerSec.toFixed(0)),
    delayP99: median(s.map((x) => x.delay.p99)),
    delayMax: Math.max(...s.map((x) => x.delay.max)),
    elu: median(s.map((x) => x.elu)),
    cpuSeconds: median(s.map((x) => x.cpuSeconds)),
  };
}
const base = results.cat?.mbPerSec;
const limit = results['c-capture']?.mbPerSec;
const notNode = (name) => name === 'cat' || name.startsWith('c-');
const rows = contenders.map((name) => {
  const r = results[name];
  return [LABELS[name], fmt(r.mbPerSec, 0), r.all.join(', '), base ? fmt(r.mbPerSec / base, 2) : '—',
    limit ? fmt(r.mbPerSec / limit, 2) : '—',
    notNode(name) ? '—' : fmt(r.delayP99, 2), notNode(name) ? '—' : fmt(r.delayMax, 1),
    notNode(name) ? '—' : fmt(r.elu, 2), notNode(name) ? '—' : fmt(r.cpuSeconds, 2)];
});
const command = `node ${process.argv.slice(1).map((a) => a.replace(/^.*\/bench\//, 'bench/')).join(' ')}`;
console.log(`\n## capture: ${bytes} bytes (${fmt(bytes / MiB, 0)} MiB) to stdout, ${chunk}-byte writes, median of ${rounds}\n`);
console.log(`\`${command}\` — ${totalSeconds.toFixed(0)} s; load average before ${loadBefore}, after ${loadAfter}` +
  `${neighbours.length ? `; WARNING: ${neighbours.length} test processes were running` : ''}\n`);
console.log(`Machine: ${describeMachine(info)}.\n`);
console.log(table(['contender', 'MB/s (median)', 'every round', '× cat', '× C reader', 'main-loop delay p99 ms', 'max ms', 'ELU', 'host CPU s'], rows));
if (results.native && base) {
  const ratio = results.native.mbPerSec / base;
  console.log(`\nTarget: spawnpool native capture ≥ 0.8 × cat pipe rate: ${fmt(ratio, 2)} → ${ratio >= 0.8 ? 'MET' : 'MISSED'}`);
}
for (const ref of ['c-capture', 'c-capture-thp']) {
  if (results.native && results[ref]) {
    console.log(`spawnpool native vs ${LABELS[ref]}: ${fmt(results.native.mbPerSec / results[ref].mbPerSec, 2)}`);
  }
}
if (opts.json) {
  writeFileSync(opts.json, `${JSON.stringify({
    bench: 'capture', command, machine: info, loadBefore, loadAfter, neighbours, bytes, chunk, rounds, threads, totalSeconds, results, samples,
  }, null, 2)}\n`);
}
