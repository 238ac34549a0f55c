// Shared fixtures for the tests: the command helper, a pool on the engine
// under test, and the expected helper log.
import { chmodSync, cpSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommandError, SpawnPool } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const HELPER = join(here, 'helper', 'build', 'commandhelper');
const HELPER_DIR = dirname(HELPER);

/** The engine this run of the suite tests: SPAWNPOOL_TEST_ENGINE, default node. */
export const ENGINE = process.env.SPAWNPOOL_TEST_ENGINE === 'native' ? 'native' : 'node';

let sharedPool;
/** One pool per test process, on the engine under test. */
export function pool() {
  return (sharedPool ??= new SpawnPool({ threads: 2, engine: ENGINE }));
}

export const tmpBase = mkdtempSync(join(tmpdir(), 'spawnpool-test-'));
let serial = 0;

/**
 * A uniquely named link to the helper; it writes its log next to the real
 * binary under the link's name, so each test reads its own log.
 */
export function helper(prefix = 'h') {
  const name = `${prefix}-${process.pid}-${++serial}`;
  const path = join(tmpBase, name);
  symlinkSync(HELPER, path);
  const logPath = join(HELPER_DIR, `${name}.log`);
  return {
    name,
    path,
    dir: tmpBase,
    logPath,
    log() {
      const text = readFileSync(logPath, 'utf8');
      rmSync(logPath);
      return text;
    },
    hasLog: () => existsSync(logPath),
  };
}

/** The pgrp of this process, from /proc: the helper's DAEMON line depends on it. */
function ownPgrp() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[2]);
}

/** What the helper prints for DAEMON when its parent is this process and it kept our group. */
export const INHERITED_DAEMON = ownPgrp() !== process.pid ? 'yes' : 'no';

export function currentUmask() {
  const mask = process.umask();
  return mask.toString(8).padStart(4, '0');
}

function sortBytes(list) {
  return [...list].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** The environment an inheriting child gets: this thread's process.env now. */
export function inheritedEnv() {
  return Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
}

/**
 * The exact log the helper writes.
 * fds: [[n, what], ...]; default: stdin and stdout /dev/null, stderr a pipe
 * (its tail is kept for error messages).
 */
export function expectedLog({
  args = [],
  env = inheritedEnv(),
  fds = [[0, '/dev/null'], [1, '/dev/null'], [2, 'pipe']],
  daemon = INHERITED_DAEMON,
  pgrp = 'inherited',
  session = 'inherited',
  cwd = process.cwd(),
  umask = currentUmask(),
} = {}) {
  return [
    ...args.map((a) => `ARG:${a}`),
    ...sortBytes(env).map((e) => `ENV:${e}`),
    ...engineFds(fds).map(([n, what]) => `FD:${n} ${what}`),
    `DAEMON:${daemon}`,
    `PGRP:${pgrp}`,
    `SESSION:${session}`,
    `CWD:${cwd}`,
    `UMASK:${umask}`,
    '',
  ].join('\n');
}

/**
 * The fd table the engine under test gives the child. The native engine
 * gives exactly what was asked. child_process (libuv) makes its stdio pipes
 * socketpairs, and cannot close what this process holds without
 * close-on-exec: those fds reach the child too.
 */
function engineFds(fds) {
  if (ENGINE !== 'node') return fds;
  const table = new Map(fds.map(([n, what]) => [n, what === 'pipe' ? 'socket' : what]));
  for (const fd of inheritableFds()) if (!table.has(fd)) table.set(fd, fdDescription(fd));
  return [...table].sort(([a], [b]) => a - b);
}

const O_CLOEXEC = 0o2000000;

/** Fds above 2 of this process without close-on-exec. */
export function inheritableFds() {
  return openFds().filter((fd) => {
    if (fd <= 2) return false;
    try {
      return (fdFlags(fd) & O_CLOEXEC) === 0;
    } catch {
      return false; // the fd that read /proc/self/fd, already closed
    }
  });
}

const fdFlags = (fd) => parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);

const O_NONBLOCK = 0o4000;

/** How the helper describes one of our fds: its path or pipe/socket/anon_inode, and nonblock. */
function fdDescription(fd) {
  const target = readlinkSync(`/proc/self/fd/${fd}`);
  const kind = /^(pipe|socket|anon_inode):/.exec(target)?.[1] ?? target;
  return (fdFlags(fd) & O_NONBLOCK) !== 0 ? `${kind} nonblock` : kind;
}

/** The helper's echo of `data` on one stream. */
export const echoed = (data, stream = 'STDOUT') => `BEGIN ${stream}\n${data}END ${stream}\n`;

/** Open fds of this process, as numbers. */
export function openFds() {
  return readdirSyncSafe('/proc/self/fd').map(Number).sort((a, b) => a - b);
}

function readdirSyncSafe(dir) {
  try { return readdirSync(dir); } catch { return []; }
}

/** 'zombie', 'alive' or 'gone' for a pid, from /proc. */
export function processState(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' ? 'zombie' : 'alive';
  } catch {
    return 'gone';
  }
}

/** The program a pid runs now, from /proc/PID/exe. */
export function exeOf(pid) {
  try { return readlinkSync(`/proc/${pid}/exe`); } catch { return undefined; }
}

/** Children of this process, alive or zombie. */
export function childrenOf(pid = process.pid) {
  const out = [];
  for (const entry of readdirSyncSafe('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** Rejects unless `promise` rejects with a CommandError of `code`; returns the error. */
export async function rejectsWith(promise, code) {
  try {
    await promise;
  } catch (err) {
    if (err?.name !== 'CommandError' || err.code !== code) {
      throw new Error(`expected CommandError ${code}, got ${err?.name} ${err?.code}: ${err?.message}`);
    }
    return err;
  }
  throw new Error(`expected CommandError ${code}, but it resolved`);
}

/** Throws unless `fn` throws a CommandError of `code`; returns the error. */
export function throwsWith(fn, code) {
  try {
    fn();
  } catch (err) {
    if (err?.name !== 'CommandError' || err.code !== code) {
      throw new Error(`expected CommandError ${code}, got ${err?.name} ${err?.code}: ${err?.message}`);
    }
    return err;
  }
  throw new Error(`expected CommandError ${code}, but it returned`);
}

/** The threads of this process that are the parent of one of `pids` (/proc/self/task/TID/children). */
export function spawningThreads(pids) {
  const threads = new Set();
  for (const tid of readdirSyncSafe('/proc/self/task')) {
    let children = '';
    try { children = readFileSync(`/proc/self/task/${tid}/children`, 'utf8'); } catch { continue; }
    if (children.split(' ').some((pid) => pids.includes(Number(pid)))) threads.add(tid);
  }
  return threads;
}

/**
 * Runs short commands on `run` until the process's fd count holds still:
 * every thread of the pool has started and opened what it opens lazily
 * (a thread that starts late gets work only from then on). With `pool`
 * and `threads`: first, until children of that many threads run at once,
 * so that a thread still starting cannot open its fds after the count.
 */
export async function warmUp(run, { pool, threads } = {}) {
  while (pool !== undefined) {
    const sleepers = await Promise.all(Array.from({ length: 16 }, () => new Command('/bin/sleep', 'infinity').runAsync({ pool })));
    const up = spawningThreads(sleepers.map((s) => s.pid)).size;
    await Promise.all(sleepers.map((s) => s.abort()));
    await Promise.all(sleepers.map((s) => s.wait().catch(() => undefined)));
    if (up === threads) break;
  }
  let fds = -1;
  for (let steady = 0; steady < 3;) {
    await Promise.all(Array.from({ length: 16 }, run));
    const now = openFds().length;
    steady = now === fds ? steady + 1 : 0;
    fds = now;
  }
  return fds;
}

/** 'ok', or the CommandError's code. */
export async function codeOf(promise) {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    return err.code;
  }
}

/**
 * Every run has settled, so every child is reaped: this only waits for /proc
 * to agree, and fails the test by timeout otherwise.
 */
export async function untilNoChildren() {
  while (childrenOf().length > 0) await new Promise((r) => setTimeout(r, 20));
}

/** Tests that change credentials, add users or drop capabilities need root; any other user skips them. */
export const isRoot = process.getuid() === 0;

/**
 * Registers a test that needs root: for any other user it is skipped, and
 * says so with the reason (uvu counts it in "Skipped").
 */
export function rootTest(test, name, fn) {
  if (isRoot) return test(name, fn);
  console.log(`  skipped: ${name}: needs root`);
  return test.skip(name, fn);
}

let reachable;
/**
 * The library (dist/, with its dependencies beside it) and the command helper,
 * copied to a directory of mode 0755 under the system's tmpdir: a test that
 * drops to another user must not depend on where the clone sits (a clone
 * inside a 0700 directory, or under /root, is out of that user's reach).
 */
export function reachableCopy() {
  if (reachable) return reachable;
  const root = mkdtempSync(join(tmpdir(), 'spawnpool-reach-'));
  chmodSync(root, 0o755);
  const repo = join(here, '..');
  cpSync(join(repo, 'dist'), join(root, 'dist'), { recursive: true });
  // The bundles' own imports (package.json "dependencies"); piscina's optional @napi-rs/nice stays out.
  for (const dep of Object.keys(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).dependencies)) {
    cpSync(join(repo, 'node_modules', dep), join(root, 'node_modules', dep), { recursive: true });
  }
  cpSync(join(repo, 'package.json'), join(root, 'package.json'));
  cpSync(HELPER, join(root, 'commandhelper'));
  chmodRecursive(root);
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  return (reachable = { root, entry: join(root, 'dist', 'index.js'), helper: join(root, 'commandhelper') });
}

function chmodRecursive(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      chmodSync(path, 0o755);
      chmodRecursive(path);
    } else {
      chmodSync(path, statSync(path).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}
