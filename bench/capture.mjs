#!/usr/bin/env node
// Output throughput: a child writes 1 GiB to stdout. Streaming: spawnpool
// hands it to a consumer that discards it (runAsync() + outputPipe(),
// `for await` over handle.stdout) against the same producer piped into
// `cat > /dev/null` through a real pipe (a FIFO; no shell). Capture:
// spawnpool keeps it (captureOutput, encoding 'buffer') against a C reader
// that keeps it in one buffer with huge pages. Per-thread CPU for each.
// See bench/README.md; `node bench/capture.mjs --help` for the options.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  busyNeighbours, compileC, describeMachine, fmt, GiB, loadAverage, waitQuiet, loadSpawnpool, machine, measured, median, MiB, parseArgs,
  SHARED_OPTIONS, sleep, table, selectContenders } from './lib.mjs';

const CONTENDERS = ['cat', 'native-stream', 'c-capture', 'c-capture-thp', 'native', 'node', 'child_process'];
const LABELS = {
  cat: 'producer | cat > /dev/null (pipe rate, the baseline)',
  'native-stream': 'spawnpool native, outputPipe() to a consumer that discards',
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
const NATIVE = ['native', 'native-stream'];
const sp = contenders.some((c) => [...NATIVE, 'node'].includes(c)) ? await loadSpawnpool(opts) : undefined;

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

/** Streaming: every chunk of the child's stdout read and dropped. */
function spawnpoolStream(pool) {
  return measured(async () => {
    const h = await new sp.Command(producer, ...producerArgs).outputPipe().runAsync({ pool });
    let got = 0;
    for await (const chunk of h.stdout) got += chunk.length;
    await h.wait();
    if (got !== bytes) throw new Error(`streamed ${got} bytes, expected ${bytes}`);
    return got;
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
  if (!contenders.some((c) => (engine === 'native' ? NATIVE : ['node']).includes(c))) continue;
  pools[engine] = new sp.SpawnPool({ threads, engine });
  await new sp.Command('/bin/true').run({ pool: pools[engine] });   // workers up
}

// What the loop-delay monitor (on in every window) costs the main thread by
// itself, idle: the main-thread column below includes at most that much.
const monitorCost = await (async () => {
  const m = await measured(() => sleep(1000));
  return m.threads.main / m.seconds;   // CPU s per s
})();

const samples = Object.fromEntries(contenders.map((c) => [c, []]));
const startedAt = performance.now();
for (let round = 0; round < rounds; round++) {
  for (const name of contenders) {
    const m = name === 'cat' ? await pipeline(catPath, [])
      : name === 'c-capture' ? await pipeline(captureReader, [String(bytes + MiB)])
      : name === 'c-capture-thp' ? await pipeline(captureReader, [String(bytes + MiB), 'huge'])
      : name === 'child_process' ? await cpCapture()
      : name === 'native-stream' ? await spawnpoolStream(pools.native)
      : await spawnpoolCapture(pools[name]);
    const s = { mbPerSec: bytes / m.seconds / 1e6, seconds: m.seconds, delay: m.delay, elu: m.elu, cpuSeconds: m.cpuSeconds, threads: m.threads };
    samples[name].push(s);
    log(`  round ${round + 1} ${name.padEnd(13)} ${fmt(s.mbPerSec, 0).padStart(7)} MB/s  ${s.seconds.toFixed(3)} s` +
      `  loop delay p99 ${fmt(s.delay.p99, 2)} max ${fmt(s.delay.max, 1)} ms  ELU ${fmt(s.elu, 2)}  host CPU ${s.cpuSeconds.toFixed(2)} s` +
      ` (main ${s.threads.main.toFixed(2)}, spawnpool threads ${s.threads.library.toFixed(2)}, Node's ${s.threads.node.toFixed(2)})`);
    globalThis.gc?.();
  }
}
for (const pool of Object.values(pools)) await pool.destroy();
const totalSeconds = (performance.now() - startedAt) / 1000;
const loadAfter = loadAverage();

// ---- report ----------------------------------------------------------------

const results = {};
const perGiB = GiB / bytes;
for (const name of contenders) {
  const s = samples[name];
  const pick = (f) => median(s.map(f));
  results[name] = {
    mbPerSec: pick((x) => x.mbPerSec),
    all: s.map((x) => +x.mbPerSec.toFixed(0)),
    delayP99: pick((x) => x.delay.p99),
    delayMax: Math.max(...s.map((x) => x.delay.max)),
    elu: pick((x) => x.elu),
    cpuSecondsPerGiB: pick((x) => x.cpuSeconds) * perGiB,
    mainPerGiB: pick((x) => x.threads.main) * perGiB,
    libraryPerGiB: pick((x) => x.threads.library) * perGiB,
    nodePerGiB: pick((x) => x.threads.node) * perGiB,
    seconds: pick((x) => x.seconds),
  };
}
const base = results.cat?.mbPerSec;
const thp = results['c-capture-thp']?.mbPerSec;
const notNode = (name) => name === 'cat' || name.startsWith('c-');
const rows = contenders.map((name) => {
  const r = results[name];
  const node = !notNode(name);
  return [LABELS[name], fmt(r.mbPerSec, 0), r.all.join(', '), base ? fmt(r.mbPerSec / base, 2) : '—',
    thp ? fmt(r.mbPerSec / thp, 2) : '—',
    node ? fmt(r.delayP99, 2) : '—', node ? fmt(r.delayMax, 1) : '—', node ? fmt(r.elu, 2) : '—',
    node ? fmt(r.cpuSecondsPerGiB, 2) : '—', node ? fmt(r.mainPerGiB, 2) : '—', node ? fmt(r.libraryPerGiB, 2) : '—',
    node ? fmt(r.nodePerGiB, 2) : '—'];
});
/** Where a GiB's host CPU went, per thread. */
const breakdown = (r) => `host CPU ${fmt(r.cpuSecondsPerGiB, 2)} s per GiB over ${fmt(r.seconds * perGiB, 2)} s of wall time per GiB: ` +
  `main thread ${fmt(r.mainPerGiB, 2)} s, spawnpool threads ${fmt(r.libraryPerGiB, 2)} s, Node's threads ${fmt(r.nodePerGiB, 2)} s`;
const targets = [];
const target = (what, name, ref, refLabel, goal) => {
  if (!results[name] || !results[ref]) return;
  const r = results[name];
  const ratio = r.mbPerSec / results[ref].mbPerSec;
  targets.push(`${what} ≥ ${goal} × ${refLabel}: ${fmt(ratio, 2)} (${fmt(r.mbPerSec, 0)} vs ${fmt(results[ref].mbPerSec, 0)} MB/s) → ` +
    `${ratio >= goal ? 'MET' : 'MISSED'}; ${breakdown(r)}`);
};
target('streaming, outputPipe() to a discarding consumer,', 'native-stream', 'cat', '`cat > /dev/null`', 0.8);
target('capture into a buffer (native)', 'native', 'c-capture-thp', 'the C in-memory reader with huge pages', 0.9);

const command = `node ${process.argv.slice(1).map((a) => a.replace(/^.*\/bench\//, 'bench/')).join(' ')}`;
console.log(`\n## capture and streaming: ${bytes} bytes (${fmt(bytes / MiB, 0)} MiB) to stdout, ${chunk}-byte writes, median of ${rounds}\n`);
console.log(`\`${command}\` — ${totalSeconds.toFixed(0)} s; load average before ${loadBefore}, after ${loadAfter}` +
  `${neighbours.length ? `; WARNING: ${neighbours.length} test processes were running` : ''}\n`);
console.log(`Machine: ${describeMachine(info)}.\n`);
console.log('Host CPU: process.cpuUsage(), all threads; per thread: /proc/self/task/*/schedstat; both in s per GiB. ' +
  `The main thread's figure includes the loop-delay monitor, which costs an idle main thread ${fmt(monitorCost * 1000, 0)} ms per s here.\n`);
console.log(table(['contender', 'MB/s (median)', 'every round', '× cat', '× C reader, huge pages', 'main-loop delay p99 ms', 'max ms', 'ELU',
  'host CPU s/GiB', 'main thread s/GiB', 'spawnpool threads s/GiB', "Node's threads s/GiB"], rows));
if (targets.length) console.log(['', 'Targets:', ...targets.map((t) => `- ${t}`)].join('\n'));
if (opts.json) {
  writeFileSync(opts.json, `${JSON.stringify({
    bench: 'capture', command, machine: info, loadBefore, loadAfter, neighbours, bytes, chunk, rounds, threads, totalSeconds, monitorCost, results, samples,
  }, null, 2)}\n`);
}
