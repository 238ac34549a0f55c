// Shared by the benchmarks: options, the C programs they compile, the
// machine description, ballast, event-loop measurements and tables.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs as utilParseArgs } from 'node:util';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const benchDir = fileURLToPath(new URL('.', import.meta.url));
export const rootDir = join(benchDir, '..');
export const buildDir = join(benchDir, 'build');

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Options several benchmarks take, by long name; each script picks what it uses. */
export const SHARED_OPTIONS = {
  threads: { type: 'number', short: 't' },
  only: 'list',
  skip: 'list',
  quick: 'boolean',
  json: 'string',
  dist: 'string',
  snapshot: 'boolean',
  'wait-quiet': 'number',
};

/** SHARED_OPTIONS but the named ones. */
export function sharedOptions(...names) {
  return Object.fromEntries(names.map((n) => [n, SHARED_OPTIONS[n]]));
}

const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/**
 * node:util's parseArgs, with the value types the benchmarks need. `spec`
 * maps each long name to 'number' | 'string' | 'boolean' | 'list' or
 * { type, short }; the result is keyed by the camelCased long name. `-h`,
 * `--help` print `usage`; an unknown option or a bad value exits 2.
 */
export function parseArgs(argv, spec, usage) {
  const options = { help: { type: 'boolean', short: 'h' } };
  for (const [name, s] of Object.entries(spec)) {
    const { type, short } = typeof s === 'string' ? { type: s } : s;
    options[name] = { type: type === 'boolean' ? 'boolean' : 'string', ...(short && { short }) };
  }
  let values;
  try {
    ({ values } = utilParseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const out = {};
  for (const [name, s] of Object.entries(spec)) {
    const value = values[name];
    if (value === undefined) continue;
    const type = typeof s === 'string' ? s : s.type;
    if (type === 'number') {
      const n = Number(value);
      if (value === '' || !Number.isFinite(n) || n < 0) {
        process.stderr.write(`--${name}: not a number: ${value}\n`);
        process.exit(2);
      }
      out[camel(name)] = n;
    } else if (type === 'list') {
      out[camel(name)] = value.split(',').map((v) => v.trim()).filter(Boolean);
    } else {
      out[camel(name)] = value;
    }
  }
  return out;
}

/** The contenders --only / --skip leave, in their fixed order; an unknown name exits 2. */
export function selectContenders(all, opts) {
  for (const name of [...(opts.only ?? []), ...(opts.skip ?? [])]) {
    if (!all.includes(name)) {
      console.error(`unknown contender ${name}; known: ${all.join(', ')}`);
      process.exit(2);
    }
  }
  return all.filter((c) => (opts.only ? opts.only.includes(c) : true) && !(opts.skip ?? []).includes(c));
}

/**
 * Runs `file` with `args` (no shell) and returns its stdout (with `inherit`
 * both its streams go to our stderr); throws when it cannot start or exits
 * non-zero.
 */
export function runSync(file, args = [], { inherit = false } = {}) {
  const r = spawnSync(file, args, { encoding: 'utf8', stdio: inherit ? ['ignore', 2, 2] : ['ignore', 'pipe', 'ignore'] });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${file} exited ${r.status ?? r.signal}`);
  return r.stdout ?? '';
}

/** A --option's list of positive integers (values as parseArgs gave them); exits 2 otherwise. */
export function counts(values, name) {
  const n = values.map(Number);
  if (n.length === 0 || n.some((x) => !Number.isInteger(x) || x < 1)) {
    process.stderr.write(`--${name}: not a list of counts: ${values.join(',')}\n`);
    process.exit(2);
  }
  return n;
}

/** Compiles bench/<name>.c into bench/build/<name> when the binary is missing or older. */
export function compileC(name, extra = []) {
  const src = join(benchDir, `${name}.c`);
  const out = join(buildDir, name);
  mkdirSync(buildDir, { recursive: true });
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    runSync(process.env.CC || 'cc', ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-pthread', '-o', out, src, ...extra], { inherit: true });
  }
  return out;
}

/**
 * The library build under test, as a directory: `--dist DIR` picks another
 * build; `--snapshot` first copies it to bench/build/dist (so that a rebuild
 * by someone else during a long run cannot pull the files away;
 * node_modules still resolves from there).
 */
export function distDir(opts) {
  let dist = opts.dist ? resolve(process.cwd(), opts.dist) : join(rootDir, 'dist');
  if (!existsSync(join(dist, 'index.js'))) {
    throw new Error(`${dist}/index.js not found: run \`node build.mjs\` first`);
  }
  if (opts.snapshot) {
    const copy = join(buildDir, 'dist');
    rmSync(copy, { recursive: true, force: true });
    cpSync(dist, copy, { recursive: true });
    dist = copy;
  }
  return dist;
}

/** The library under test (distDir()), imported. */
export async function loadSpawnpool(opts) {
  const dist = distDir(opts);
  const mod = await import(pathToFileURL(join(dist, 'index.js')).href);
  return { ...mod, distDir: dist };
}

function firstMatch(text, re) {
  const m = re.exec(text);
  return m ? m[1].trim() : undefined;
}

/** System call and page-fault costs of this machine (bench/calibrate.c), or {} if it cannot run. */
export function calibrate() {
  try {
    return JSON.parse(runSync(compileC('calibrate')));
  } catch {
    return {};
  }
}

/** What RESULTS.md says about the machine. */
export function machine() {
  let cpu = 'unknown';
  try {
    cpu = firstMatch(readFileSync('/proc/cpuinfo', 'utf8'), /^model name\s*:\s*(.*)$/m) ?? cpu;
  } catch { /* not Linux */ }
  let kernel = 'unknown';
  try {
    kernel = runSync('uname', ['-srm']).trim();
  } catch { /* no uname */ }
  let thp = 'unknown';
  try {
    thp = firstMatch(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'), /\[(\w+)\]/) ?? thp;
  } catch { /* no THP */ }
  let hypervisor;
  try {
    hypervisor = firstMatch(runSync('dmesg'), /Hypervisor detected: (.*)$/m);
  } catch { /* dmesg not readable */ }
  return {
    cpu,
    cores: availableParallelism(),
    ramGiB: +(totalmem() / GiB).toFixed(1),
    kernel,
    node: process.version,
    thp,
    hypervisor: hypervisor ?? 'unknown',
    ...calibrate(),
  };
}

export function describeMachine(m) {
  return `${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB, ${m.kernel}, node ${m.node}, THP ${m.thp}, hypervisor ${m.hypervisor}; ` +
    `syscall ${m.syscallUs ?? '?'} µs, first-touch fault ${m.fault4kUs ?? '?'} µs per 4 KiB page (${m.faultThpUsPer4k ?? '?'} µs per 4 KiB with THP)`;
}

export function loadAverage() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

/** Other benchmark-disturbing processes (the test suite, other benchmarks), by command line. */
export function busyNeighbours() {
  try {
    return runSync('pgrep', ['-af', 'uvu|npm test|bench/|/usr/bin/parallel'])
      .split('\n')
      .filter((l) => l && !l.includes('pgrep') && !l.startsWith(`${process.pid} `) && !l.startsWith(`${process.ppid} `))
      .map((l) => l.trim());
  } catch {
    return [];   // pgrep exits 1 when nothing matches
  }
}

/**
 * Waits (up to maxSeconds) until no neighbour runs and the 1-minute load
 * average is below maxLoad. Returns what it saw last.
 */
export async function waitQuiet(maxSeconds, maxLoad, log) {
  const until = Date.now() + maxSeconds * 1000;
  for (;;) {
    const n = busyNeighbours();
    const load = Number(loadAverage().split(' ')[0]);
    if (n.length === 0 && !(load > maxLoad)) return { neighbours: n, load };
    if (Date.now() > until) return { neighbours: n, load };
    log(`waiting for a quiet machine: load ${load}, ${n.length} neighbour(s)${n.length ? `: ${n[0]}` : ''}`);
    await sleep(10_000);
  }
}

export function rssMiB() {
  return Math.round(process.memoryUsage().rss / MiB);
}

/** Allocates `mib` MiB of Buffers and writes every page, so that all of it is resident. */
export function allocateBallast(mib) {
  const chunkMiB = 256;
  const chunks = [];
  for (let left = mib, i = 0; left > 0; left -= chunkMiB, i++) {
    const b = Buffer.allocUnsafeSlow(Math.min(left, chunkMiB) * MiB);
    b.fill(0x40 + (i % 32));
    chunks.push(b);
  }
  return chunks;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `start()` `rate` times a second for `ms`; resolves with the rate achieved once every started promise settled. */
export async function paced(rate, ms, start) {
  const pending = [];
  const t0 = performance.now();
  let started = 0;
  for (;;) {
    const now = performance.now();
    if (now - t0 >= ms) break;
    for (const due = Math.floor(((now - t0) / 1000) * rate); started < due; started++) pending.push(start());
    await sleep(1);
  }
  await Promise.all(pending);
  return started / ((performance.now() - t0) / 1000);
}

const nsToMs = (ns) => ns / 1e6;

/**
 * monitorEventLoopDelay at 1 ms resolution, as { p50, p99, max, samples } in
 * ms. A loop blocked for the whole storm gives the histogram no sample at
 * all (it records the interval between two timer runs), so beside it a 1 ms
 * interval timer tracks the longest gap, the one still open at stop()
 * included: `stall`.
 */
export class LoopDelay {
  #h = monitorEventLoopDelay({ resolution: 1 });
  #timer;
  #last = 0;
  #stall = 0;

  start() {
    this.#h.reset();
    this.#h.enable();
    this.#last = performance.now();
    this.#stall = 0;
    this.#timer = setInterval(() => {
      const t = performance.now();
      this.#stall = Math.max(this.#stall, t - this.#last);
      this.#last = t;
    }, 1);
  }

  stop() {
    this.#h.disable();
    clearInterval(this.#timer);
    const stall = Math.max(this.#stall, performance.now() - this.#last);
    const h = this.#h;
    if (h.count === 0) return { p50: NaN, p99: NaN, max: NaN, samples: 0, stall };
    return {
      p50: nsToMs(h.percentile(50)),
      p99: nsToMs(h.percentile(99)),
      max: nsToMs(h.max),
      samples: h.count,
      stall,
    };
  }
}

/** The main loop's delay while nothing runs, for `ms`. */
export async function idleDelay(ms) {
  const d = new LoopDelay();
  d.start();
  await sleep(ms);
  return d.stop();
}

// ---- CPU per thread ----------------------------------------------------------
//
// /proc/self/task/<tid>/schedstat: the first field is the thread's time on a
// CPU in ns (user and system, not time spent runnable but preempted, which
// ELU counts as busy). Every thread of this process is named `node` (comm),
// so they are told apart by when they appeared: the threads that exist once
// libuv's threadpool has started (it starts all its threads at once) are
// Node's own (main, V8 platform workers, libuv threadpool, signal watchdog);
// every thread that appears after that was started by the library under test.

function taskIds() {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [];   // not Linux
  }
}

await readFile('/proc/self/stat');   // libuv's threadpool up
const NODE_THREADS = new Set(taskIds());

/** ns on CPU of every thread of this process, as Map(tid → ns). */
export function threadTimes() {
  const times = new Map();
  for (const tid of taskIds()) {
    try {
      times.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch { /* exited meanwhile */ }
  }
  return times;
}

/**
 * CPU (s) per kind of thread between two threadTimes(): `main` (tid = pid),
 * `library` (threads started after this module loaded: the pool's workers),
 * `node` (Node's own background threads); the thread counts, and `exited`:
 * threads seen before and gone after, whose time in the window is lost.
 */
export function threadCpu(before, after) {
  const out = { main: 0, library: 0, node: 0, libraryThreads: 0, nodeThreads: 0, exited: 0 };
  for (const [tid, ns] of after) {
    const s = (ns - (before.get(tid) ?? 0)) / 1e9;
    if (tid === process.pid) out.main += s;
    else if (NODE_THREADS.has(tid)) { out.node += s; out.nodeThreads++; }
    else { out.library += s; out.libraryThreads++; }
  }
  for (const tid of before.keys()) if (!after.has(tid)) out.exited++;
  return out;
}

/**
 * Measures `fn` (async) on the main thread: wall time, event-loop
 * utilisation, the CPU time of the whole process (process.cpuUsage(), all
 * threads) and per thread (threadCpu()). With `delay` the loop's delay too
 * (LoopDelay); its two 1 ms timers cost the main thread tens of ms of CPU a
 * second on a slow guest, so a window that measures CPU leaves it off.
 */
/**
 * The main thread's voluntary context switches so far: each one a sleep in
 * epoll_wait (or on a lock) and a wake-up, which on a guest costs more than
 * the work it wakes for.
 */
export function mainWakeups() {
  try {
    return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8'))[1]);
  } catch {
    return NaN;
  }
}

export async function measured(fn, { delay = true } = {}) {
  const monitor = delay ? new LoopDelay() : undefined;
  monitor?.start();
  const elu0 = performance.eventLoopUtilization();
  const wakeups0 = mainWakeups();
  const threads0 = threadTimes();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const threads = threadCpu(threads0, threadTimes());
  const wakeups = mainWakeups() - wakeups0;
  const elu = performance.eventLoopUtilization(elu0);
  return {
    value,
    wakeups,
    seconds,
    delay: monitor?.stop(),
    elu: elu.utilization,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    threads,
  };
}

/** CPU time (s) of this process's reaped children, from /proc/self/stat. */
export function childrenCpuSeconds() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 (cutime, cstime) are at 13 and 14 after the comm.
    const ticks = Number(fields[13]) + Number(fields[14]);
    return ticks / 100;   // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function fmt(x, digits = 1) {
  if (x === undefined || x === null || Number.isNaN(x)) return '—';
  if (typeof x === 'string') return x;
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A Markdown table (a `|` inside a cell is escaped). */
export function table(header, rows) {
  const cell = (c) => String(c).replaceAll('|', '\\|');
  const lines = [`| ${header.map(cell).join(' | ')} |`, `|${header.map((h, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n');
}
