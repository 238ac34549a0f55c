// The engine against the real kernel: fd hygiene, the child's signal state,
// exec failures, reaping that leaves other children alone, two threads
// spawning at once, leaks. Through the public API wherever it reaches; the
// addon itself only for what the API does not expose yet (setsid, setpgid,
// parentDeathSignal, argv[0], an fd without close-on-exec). Tests of native-only
// behaviour run only on that engine; where the node engine differs in a
// documented way, its test asserts the difference.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn as cpSpawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Command } from '../dist/index.js';
import {
  ENGINE, HELPER, pool, helper, expectedLog, echoed, inheritableFds, openFds, processState, exeOf, childrenOf, rejectsWith, tmpBase,
  spawningThreads,
} from './_support.js';

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const addonPath = fileURLToPath(new URL('../dist/native/spawnpool_native.node', import.meta.url));
/** The addon, when built: the node-engine run also uses its clearCloexec. */
const addon = (() => {
  try {
    return createRequire(import.meta.url)(addonPath);
  } catch (err) {
    if (ENGINE === 'native') throw err;
    return undefined;
  }
})();

const opts = (more = {}) => ({ pool: pool(), ...more });
const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something truthy or `ms` pass; returns its last value. */
async function until(probe, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value || Date.now() > deadline) return value;
    await tick();
  }
}

/** Rejects with `what` when `promise` has not settled within `ms`: a broken reaper must not hang the suite. */
function within(promise, what, ms = 20_000) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Children of this process that were not in `before`. */
const newChildren = (before) => childrenOf().filter((pid) => !before.includes(pid));

/** One field of /proc/PID/status as a BigInt (the Sig* masks are hex). */
function statusMask(pid, field) {
  const line = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!line) throw new Error(`no ${field} in /proc/${pid}/status`);
  return BigInt(`0x${line[1]}`);
}
const bit = (signal) => 1n << BigInt(signal - 1);

/** Executable fixtures for the exec failures. */
function fixture(name, content, mode) {
  const path = join(tmpBase, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}
const notExecutable = fixture('not-executable', '#!/bin/sh\nexit 0\n', 0o644);
const garbage = fixture('garbage', Buffer.from([0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]), 0o755);
// execve refuses a script whose interpreter cannot run, though the script itself can:
// this EACCES comes from execve, past the library's own X_OK check.
const badInterpreter = fixture('bad-interpreter', `#!${notExecutable}\n`, 0o755);
const missingInterpreter = fixture('missing-interpreter', '#!/nonexistent/interpreter\n', 0o755);
const plainFile = fixture('plain-file', 'not a directory\n', 0o644);

// MAX_ARG_STRLEN: 32 pages, the terminating NUL included.
const MAX_ARG_STRLEN = 131072;

// ---- fds --------------------------------------------------------------------

if (addon) {
  test('fds the host holds without close-on-exec: closed in the child (native), inherited (node); passFd and stdio only', async () => {
    const h = helper();
    const strayPath = join(tmpBase, 'stray');
    const passedPath = join(tmpBase, 'passed');
    writeFileSync(strayPath, '');
    writeFileSync(passedPath, '');
    const below = Array.from({ length: 12 }, () => openSync(strayPath, 'r'));
    const passed = openSync(passedPath, 'r');
    const above = Array.from({ length: 12 }, () => openSync(strayPath, 'r'));
    const opened = [...below, passed, ...above];
    // Gaps: every third fd closed again, on both sides of the passed one.
    const gaps = [...below, ...above].filter((_, i) => i % 3 === 1);
    for (const fd of gaps) closeSync(fd);
    const strays = [...below, ...above].filter((fd) => !gaps.includes(fd));
    try {
      for (const fd of strays) addon.clearCloexec(fd);
      const inheritable = inheritableFds();
      for (const fd of strays) assert.ok(inheritable.includes(fd), `fd ${fd} still has close-on-exec`);
      assert.not.ok(inheritable.includes(passed));
      assert.ok(strays.some((fd) => fd < passed) && strays.some((fd) => fd > passed));

      await new Command(h.path).passFd(passed).run(opts());
      const log = h.log();
      // On node, expectedLog adds every inheritable fd of this process: the documented leak.
      assert.is(log, expectedLog({ fds: [[0, '/dev/null'], [1, '/dev/null'], [2, 'pipe'], [passed, passedPath]] }));
      const seen = strays.filter((fd) => log.includes(`FD:${fd} ${strayPath}\n`));
      if (ENGINE === 'native') {
        assert.equal(seen, []);
        assert.equal(log.match(/^FD:\d+/gm), ['FD:0', 'FD:1', 'FD:2', `FD:${passed}`]);
      } else {
        assert.equal(seen, strays);
      }
      for (const fd of gaps) assert.not.ok(log.includes(`FD:${fd} `));
    } finally {
      for (const fd of opened) if (!gaps.includes(fd)) closeSync(fd);
    }
  });
}

test('concurrent spawns with pipes never hand one child the pipe ends of another', async () => {
  const hs = Array.from({ length: 40 }, () => helper('conc'));
  const runs = await Promise.all(hs.map((h, i) =>
    new Command(h.path, String(i)).inputBuffer(`in-${i}\n`).captureOutput().captureError().run(opts())));
  runs.forEach((r, i) => {
    assert.is(r.stdout, echoed(`in-${i}\n`));
    assert.is(r.stderr, echoed(`in-${i}\n`, 'STDERR'));
  });
  hs.forEach((h, i) => assert.is(h.log(), expectedLog({ args: [String(i)], fds: [[0, 'pipe'], [1, 'pipe'], [2, 'pipe']] })));
});

test('combined capture in many runs at once, from both threads', async () => {
  const runs = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    new Command('/bin/sh', '-c', 'echo "out$1"; echo "err$1" >&2', 'sh', String(i)).captureCombined().run(opts())));
  runs.forEach((r, i) => assert.is(r.output, `out${i}\nerr${i}\n`));
});

test('stdout and stderr sent to each other\'s fd (sources below their slot) land where asked', () => {
  const h = helper('swap');
  const [one, two, passedPath, fdFile] = ['swap-one', 'swap-two', 'swap-passed', 'swap-fd'].map((n) => join(tmpBase, n));
  writeFileSync(passedPath, '');
  // A process whose fd 1 and 2 are files asks for the child's stdout on its
  // fd 2 and stderr on its fd 1, and passes one more fd.
  const script = join(tmpBase, 'swap.mjs');
  writeFileSync(script, `import { openSync, writeFileSync } from 'node:fs';
import { Command, SpawnPool } from ${JSON.stringify(entry)};
const p = new SpawnPool({ threads: 1, engine: ${JSON.stringify(ENGINE)} });
const fd = openSync(${JSON.stringify(passedPath)}, 'r');
writeFileSync(${JSON.stringify(fdFile)}, String(fd));
await new Command(${JSON.stringify(h.path)}).envClear().inputBuffer('swapped\\n').outputFd(2).errorFd(1).passFd(fd).run({ pool: p });
await p.destroy();
`);
  const f1 = openSync(one, 'w');
  const f2 = openSync(two, 'w');
  let res;
  try {
    res = spawnSync(process.execPath, [script], { stdio: ['ignore', f1, f2], timeout: 30_000 });
  } finally {
    closeSync(f1);
    closeSync(f2);
  }
  assert.is(res.status, 0, readFileSync(two, 'utf8'));
  assert.is(readFileSync(one, 'utf8'), echoed('swapped\n', 'STDERR'));
  assert.is(readFileSync(two, 'utf8'), echoed('swapped\n'));
  const passed = Number(readFileSync(fdFile, 'utf8'));
  const log = h.log();
  assert.ok(log.includes(`FD:1 ${two}\nFD:2 ${one}\n`), log);
  if (ENGINE === 'native') {
    // No copy of a lifted source stays open, whatever number it got.
    // DAEMON: the helper's parent is that process, never its group's leader.
    assert.is(log, expectedLog({ env: [], fds: [[0, 'pipe'], [1, two], [2, one], [passed, passedPath]], daemon: 'yes' }));
  }
});

// ---- signals ----------------------------------------------------------------

test('the child starts with default dispositions and an empty mask, though this process ignores SIGPIPE', async () => {
  const SIGPIPE = 13;
  // What the child must not inherit: Node ignores SIGPIPE.
  assert.is.not(statusMask('self', 'SigIgn') & bit(SIGPIPE), 0n);
  const sleep = realpathSync('/bin/sleep');
  const running = await new Command('/bin/sleep', 'infinity').runAsync(opts());
  try {
    assert.is(await until(() => exeOf(running.pid) === sleep), true, 'the child never ran sleep');
    for (const field of ['SigBlk', 'SigIgn', 'SigCgt']) {
      assert.is(statusMask(running.pid, field).toString(16), '0', `${field} of the child`);
    }
  } finally {
    await running.abort();
  }
});

// ---- exec failures ------------------------------------------------------------

test('exec failures give exact codes and leave no child, alive or zombie', async () => {
  const before = childrenOf();
  const cases = [
    ['a file without any x bit', new Command(notExecutable), 'EACCES'],
    ['a script whose interpreter is not executable (execve)', new Command(badInterpreter), 'EACCES'],
    ['a script whose interpreter is missing', new Command(missingInterpreter), 'ENOENT'],
    ['garbage with +x', new Command(garbage).inputBuffer('x').captureOutput(), 'ENOEXEC'],
    ['a missing path', new Command('/nonexistent/program').captureCombined(), 'ENOENT'],
    ['a path through a file', new Command(`${plainFile}/x`), 'ENOTDIR'],
    [`an argument of ${MAX_ARG_STRLEN} bytes with its NUL`, new Command('/bin/true', 'x'.repeat(MAX_ARG_STRLEN)), 'E2BIG'],
    ['a missing cwd', new Command('/bin/true').cwd(join(tmpBase, 'no-such-dir')), 'ENOCWD'],
    ['a cwd that is a file', new Command('/bin/true').cwd(plainFile), 'ENOCWD'],
  ];
  for (const [what, cmd, code] of cases) {
    const err = await rejectsWith(cmd.run(opts()), code).catch((e) => { throw new Error(`${what}: ${e.message}`); });
    assert.is(err.pid, undefined, what);
    assert.match(err.message, /^Cannot run /, what);
    // Reaped before the run settled: no zombie even for a moment.
    assert.equal(newChildren(before), [], `${what}: a child is left`);
  }
  // One byte less fits.
  assert.is((await new Command('/bin/true', 'x'.repeat(MAX_ARG_STRLEN - 1)).run(opts())).status, 0);
  assert.equal(newChildren(before), []);
});

// ---- reaping ------------------------------------------------------------------

test('reaping never touches children the pool does not own', async () => {
  const before = childrenOf();
  const exitOf = (child) => new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const own = cpSpawn('/bin/sh', ['-c', 'read x; exit 7'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const killed = cpSpawn('/bin/sleep', ['infinity'], { stdio: 'ignore' });
  const ownExit = exitOf(own);
  const killedExit = exitOf(killed);
  const total = 120;
  let finished = 0;
  const runs = Array.from({ length: total }, (_, i) =>
    new Command('/bin/sh', '-c', `exit ${i % 5}`).run(opts({ status: true })).then((r) => {
      // Halfway through the pool's work, our own children end.
      if (++finished === total / 2) {
        own.stdin.end();
        killed.kill('SIGTERM');
      }
      return r.status;
    }));
  assert.equal(await Promise.all(runs), Array.from({ length: total }, (_, i) => i % 5));
  assert.equal(await within(ownExit, `'exit' of our own child ${own.pid}`), { code: 7, signal: null });
  assert.equal(await within(killedExit, `'exit' of our own child ${killed.pid}`), { code: null, signal: 'SIGTERM' });
  assert.equal(newChildren(before), []);
});

// ---- threads and leaks ----------------------------------------------------------

test('two worker threads run many children at once, each run with its own output and status', async () => {
  await Promise.all(Array.from({ length: 4 }, () => new Command('/bin/true').run(opts()))); // both workers up
  const sleepers = await Promise.all(Array.from({ length: 40 }, () => new Command('/bin/sleep', 'infinity').runAsync(opts())));
  try {
    const threads = spawningThreads(sleepers.map((s) => s.pid));
    assert.is(threads.size, 2, `children of ${[...threads]}`);
    assert.not.ok(threads.has(String(process.pid)), 'the main thread spawned');
    const total = 200;
    const runs = await Promise.all(Array.from({ length: total }, (_, i) =>
      new Command('/bin/sh', '-c', 'echo "$1"; exit "$2"', 'sh', `run-${i}`, String(i % 7)).captureOutput().run(opts({ status: true }))));
    runs.forEach((r, i) => {
      assert.is(r.stdout, `run-${i}\n`);
      assert.is(r.status, i % 7);
    });
    assert.is(new Set(runs.map((r) => r.pid)).size, total);
  } finally {
    await Promise.all(sleepers.map((s) => s.abort()));
  }
  for (const s of sleepers) assert.is(processState(s.pid), 'gone');
});

test('no fd and no process left after hundreds of spawns and failed spawns', async () => {
  const round = (i) => Promise.all([
    new Command('/bin/sh', '-c', 'read x; echo "$x"; echo e >&2').inputBuffer(`hi ${i}\n`).captureOutput().captureError().run(opts())
      .then((r) => assert.is(r.stdout, `hi ${i}\n`)),
    new Command('/bin/sh', '-c', 'echo out; echo err >&2').captureCombined().run(opts())
      .then((r) => assert.is(r.output, 'out\nerr\n')),
    rejectsWith(new Command('/bin/sh', '-c', 'echo failing >&2; exit 3').run(opts()), 'EEXIT'),
    rejectsWith(new Command('/bin/sleep', 'infinity').run(opts({ timeoutMs: 1 })), 'ETIMEDOUT'),
    rejectsWith(new Command(garbage).inputBuffer('x').captureOutput().captureError().run(opts()), 'ENOEXEC'),
    rejectsWith(new Command('/nonexistent/program').inputBuffer('x').captureCombined().run(opts()), 'ENOENT'),
    rejectsWith(new Command('/bin/true').cwd('/nonexistent').run(opts()), 'ENOCWD'),
  ]);
  // Warm up: whatever libuv, piscina and the workers open lazily is open now.
  for (let i = 0; i < 6; i++) await Promise.all([round(i), round(i + 100)]);
  const fdsBefore = openFds();
  const before = childrenOf();
  for (let i = 0; i < 25; i++) await Promise.all([round(i), round(i + 100)]);
  // 350 runs, 150 of them failed spawns. Sockets close their fds a turn later.
  await until(() => openFds().every((fd) => fdsBefore.includes(fd)), 5_000);
  const fdsAfter = openFds();
  assert.equal(fdsAfter.filter((fd) => !fdsBefore.includes(fd)), [], `open before: ${fdsBefore}; after: ${fdsAfter}`);
  assert.ok(fdsAfter.length <= fdsBefore.length);
  assert.equal(newChildren(before), []);
});

// ---- bytes ----------------------------------------------------------------------

test('an argument and a variable with multibyte UTF-8 reach the child byte for byte', async () => {
  const h = helper();
  const args = ['ünïcödé', '日本語のテキスト', '🦀 four-byte', 'e\u0301 combining', '\u00a0nbsp\u2028ls', 'ß'.repeat(1000)];
  await new Command(h.path, ...args).envClear().envPair('UTF', '✓ κόσμε').run(opts());
  assert.is(h.log(), expectedLog({ args, env: ['UTF=✓ κόσμε'] }));
  const r = await new Command('/bin/sh', '-c', 'printf %s "$1"', 'sh', args[2]).captureOutput({ encoding: 'buffer' }).run(opts());
  assert.equal(Buffer.from(r.stdout), Buffer.from(args[2], 'utf8'));
  assert.is(Buffer.from(r.stdout).toString('hex'), 'f09fa68020666f75722d62797465');
});

test('1 MiB through stdin to stdout of /bin/cat, byte for byte', async () => {
  const data = randomBytes(1 << 20);
  const r = await new Command('/bin/cat').inputBuffer(data).captureOutput({ encoding: 'buffer' }).run(opts());
  assert.is(r.stdout.byteLength, data.length);
  assert.ok(Buffer.from(r.stdout).equals(data), 'the bytes differ');
});

test('captures of every size up to 40 MiB arrive byte for byte, stdout and stderr, page boundaries included', async () => {
  // Large captures are moved into the result page by page and their ends
  // copied: a byte that depends on its page catches a misplaced page.
  const pattern = (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >>> 12) * 13) & 0xff;
    return b;
  };
  const sizes = [0, 1, 4095, 4096, 4097, (1 << 20) + 17, (4 << 20) - 1, (4 << 20) + 4096 * 3 + 5, (40 << 20) + 1234];
  const data = pattern(sizes.at(-1));
  const writer = `const d = require('fs').readFileSync(0); const n = +process.argv[1];` +
    `process.stdout.write(d.subarray(0, n)); process.stderr.write(d.subarray(0, n));`;
  const results = await Promise.all(sizes.map((n) => new Command(process.execPath, '-e', writer, String(n)).inputBuffer(data)
    .captureOutput({ encoding: 'buffer' }).captureError({ encoding: 'buffer' }).maxBuffer(64 << 20).run(opts())));
  results.forEach((r, i) => {
    assert.ok(Buffer.from(r.stdout).equals(data.subarray(0, sizes[i])), `stdout of ${sizes[i]} bytes`);
    assert.ok(Buffer.from(r.stderr).equals(data.subarray(0, sizes[i])), `stderr of ${sizes[i]} bytes`);
  });
});

test('combined capture keeps the order of writes to stdout and stderr', async () => {
  const script = 'for i in 1 2 3; do echo out$i; echo err$i >&2; done';
  const r = await new Command('/bin/sh', '-c', script).captureCombined().run(opts());
  assert.is(r.output, 'out1\nerr1\nout2\nerr2\nout3\nerr3\n');
});

if (ENGINE === 'native') {
  test('without close_range (seccomp: ENOSYS, as before Linux 5.9): the fallbacks still close every stray fd', async () => {
    const direct = helper('ncr');
    const viaHelper = helper('ncr-helper');
    const host = join(tmpBase, 'no-close-range-host.mjs');
    // A host with fds it holds without close-on-exec, around a passed one,
    // spawning directly (vfork child) and through the exec helper.
    writeFileSync(host, `import { openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Command, SpawnPool } from ${JSON.stringify(entry)};
const addon = createRequire(import.meta.url)(${JSON.stringify(addonPath)});
const strays = [openSync('/dev/null', 'r'), openSync('/dev/null', 'r')];
const passed = openSync('/dev/null', 'r');
strays.push(openSync('/dev/null', 'r'));
for (const fd of strays) addon.clearCloexec(fd);
const pool = new SpawnPool({ threads: 1, engine: 'native' });
await new Command(${JSON.stringify(direct.path)}).passFd(passed).run({ pool });
const running = await new Command(${JSON.stringify(viaHelper.path)}).passFd(passed).requireHandshake().runAsync({ pool });
await running.handshakeWait();
await running.handshakeNotify();
await running.wait();
await pool.close();
const seccomp = /^Seccomp:\\s*(\\d)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1];
process.stdout.write(JSON.stringify({ strays, passed, seccomp }));
`);
    const noCloseRange = join(dirname(HELPER), 'no-close-range');
    const r = spawnSync(noCloseRange, [process.execPath, host], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const { strays, passed, seccomp } = JSON.parse(r.stdout);
    assert.is(seccomp, '2');
    const fds = (log) => log.match(/^FD:.*$/gm);
    const expect = ['FD:0 /dev/null', 'FD:1 /dev/null', 'FD:2 pipe', `FD:${passed} /dev/null`];
    assert.equal(fds(direct.log()), expect);
    assert.equal(fds(viaHelper.log()), expect);
    assert.ok(strays.some((fd) => fd < passed) && strays.some((fd) => fd > passed));
  });
}

// ---- the addon itself (native only) ---------------------------------------------

/** Calls addon.spawn with defaults; returns the child and a promise of its raw status. */
function rawSpawn(file, argv, { env = [], cwd = null, stdio = [-1, -1, -1], keep = [], flags = {} } = {}) {
  const child = addon.spawn(file, argv, env, cwd, stdio, keep, flags);
  const status = new Promise((resolve) => addon.watch(child.pidfd, resolve));
  return { ...child, status };
}
async function readAll(fd) {
  const chunks = [];
  for await (const chunk of new Socket({ fd, readable: true, writable: false })) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}
/** The error addon.spawn throws, or a failure when it spawns. */
function spawnError(file, argv, more = {}) {
  let child;
  try {
    child = rawSpawn(file, argv, more);
  } catch (err) {
    return err;
  }
  addon.kill(child.pidfd, 9);
  throw new Error(`${file} spawned (pid ${child.pid}); expected a failure`);
}

if (ENGINE === 'native') {
  test('addon: raw wait statuses; argv[0] apart from the file; kill() until reaped, a zombie included', async () => {
    assert.is(await within(rawSpawn('/bin/sh', ['sh', '-c', 'exit 3']).status, 'exit 3'), 3 << 8);
    // Whether 0x80 (core dumped) is set depends on ulimit -c and core_pattern.
    assert.is((await within(rawSpawn('/bin/sh', ['sh', '-c', 'kill -SEGV $$']).status, 'SIGSEGV')) & 0x7f, 11);

    const shown = rawSpawn('/bin/sh', ['custom-argv0', '-c', 'echo "$0|$FOO|$(pwd)"'], { env: ['FOO=bar baz'], cwd: tmpBase, stdio: [-1, -2, -1] });
    assert.is(await readAll(shown.stdout), `custom-argv0|bar baz|${tmpBase}\n`);
    assert.is(await within(shown.status, 'sh'), 0);

    const sleeper = rawSpawn('/bin/sleep', ['sleep', 'infinity']);
    assert.is(addon.kill(sleeper.pidfd, 9), true);
    assert.is(await within(sleeper.status, 'sleep'), 9);
    assert.is(processState(sleeper.pid), 'gone');

    // Not watched yet: it stays a zombie, which still takes a signal.
    const done = addon.spawn('/bin/true', ['true'], [], null, [-1, -1, -1], [], {});
    assert.is(await until(() => processState(done.pid) === 'zombie'), true);
    assert.is(addon.kill(done.pidfd, 15), true);
    assert.is(await within(new Promise((resolve) => addon.watch(done.pidfd, resolve)), 'status of a zombie'), 0);
    assert.is(processState(done.pid), 'gone');
  });

  test('addon: a child spawned from the main thread also starts with a clean signal state', async () => {
    const c = rawSpawn('/bin/sleep', ['sleep', 'infinity']);
    const sleep = realpathSync('/bin/sleep');
    try {
      assert.is(await until(() => exeOf(c.pid) === sleep), true);
      for (const field of ['SigBlk', 'SigIgn', 'SigCgt']) assert.is(statusMask(c.pid, field).toString(16), '0', field);
    } finally {
      addon.kill(c.pidfd, 9);
    }
    assert.is(await within(c.status, 'sleep'), 9);
  });

  test('addon: each failed step throws its errno, names its syscall, and reaps its child', () => {
    const before = childrenOf();
    const cases = [
      ['/nonexistent/program', {}, 'ENOENT', 'execve'],
      [notExecutable, {}, 'EACCES', 'execve'],
      [badInterpreter, {}, 'EACCES', 'execve'],
      [garbage, {}, 'ENOEXEC', 'execve'],
      [`${plainFile}/x`, {}, 'ENOTDIR', 'execve'],
      ['/bin/true', { cwd: join(tmpBase, 'no-such-dir') }, 'ENOENT', 'chdir'],
      ['/bin/true', { cwd: plainFile }, 'ENOTDIR', 'chdir'],
      ['/bin/true', { stdio: [-2, -2, -3] }, 'E2BIG', 'execve', ['true', 'x'.repeat(MAX_ARG_STRLEN)]],
    ];
    const fds = openFds();
    for (const [file, more, code, syscall, argv = ['x']] of cases) {
      const err = spawnError(file, argv, more);
      assert.is(err.code, code, file);
      assert.is(err.syscall, syscall, file);
      assert.ok(err.errno < 0, file);
      assert.ok(err.message.startsWith(`${syscall}: `), err.message);
      assert.equal(newChildren(before), [], `${file}: a child is left`);
    }
    // Failed spawns synchronously close what they opened (/dev/null, pipes, pidfd).
    assert.equal(openFds(), fds);
  });

  test('addon: bad arguments throw before anything is spawned', () => {
    const before = childrenOf();
    const fds = openFds();
    const closed = openSync('/dev/null', 'r');
    closeSync(closed);
    const t = (fn, kind, pattern) => assert.throws(fn, (err) => err instanceof kind && pattern.test(err.message));
    t(() => addon.spawn('/bin/true', ['true'], [], null, [-1, -1], [], {}), TypeError, /stdio/);
    t(() => addon.spawn('/bin/true', ['true'], [], null, [-3, -1, -1], [], {}), RangeError, /stdio/);
    t(() => addon.spawn('/bin/true', ['true'], [], null, [-1, -1, -1], [1], {}), RangeError, /keepFds/);
    t(() => addon.spawn('/bin/true', ['true'], [], null, [-1, -1, -1], [], { parentDeathSignal: 65 }), RangeError, /parentDeathSignal/);
    t(() => addon.spawn('/bin/true', ['true'], [], null, [-1, -1, -1], [], { setsid: 'yes' }), TypeError, /setsid/);
    t(() => addon.spawn('/bin/true', ['tr\0ue'], [], null, [-1, -1, -1], [], {}), TypeError, /NUL/);
    t(() => addon.spawn('/bin/true', ['true'], ['A=1', 2], null, [-1, -1, -1], [], {}), TypeError, /envp/);
    t(() => addon.spawn('/bin/true', ['true'], [], 7, [-1, -1, -1], [], {}), TypeError, /cwd/);
    t(() => addon.spawn('/bin/true', ['true'], [], null, [-1, -1, -1], [], null), TypeError, /flags/);
    const ebadf = (() => { try { addon.spawn('/bin/true', ['true'], [], null, [-1, -1, -1], [closed], {}); } catch (err) { return err; } })();
    assert.is(ebadf?.code, 'EBADF');
    const ebadfStdio = (() => { try { addon.spawn('/bin/true', ['true'], [], null, [closed, -1, -1], [], {}); } catch (err) { return err; } })();
    assert.is(ebadfStdio?.code, 'EBADF');
    const [r, w] = addon.pipe();
    const move = (moveFds, keep = []) => () => addon.spawn('/bin/true', ['true'], [], null, [-1, -1, -1], keep, { moveFds });
    t(move([r]), TypeError, /moveFds must be pairs/);
    t(move([r, 'x']), TypeError, /moveFds/);
    t(move([r, 2]), RangeError, /moveFds: 0, 1 and 2/);
    t(move([r, w], [w]), RangeError, /moveFds: .*keepFd/);
    t(move([r, 40, w, 40]), RangeError, /two sources/);
    assert.is((() => { try { move([1 << 20, 40])(); } catch (err) { return err; } })()?.code, 'EBADF');
    addon.closeFd(r);
    addon.closeFd(w);
    assert.equal(newChildren(before), []);
    assert.equal(openFds(), fds);
  });

  test('addon: adviseHugePages() advises the 2 MiB-aligned interior of an ArrayBuffer, refuses what is not one', () => {
    // A kernel without transparent huge pages refuses MADV_HUGEPAGE (EINVAL).
    assert.is(addon.adviseHugePages(new ArrayBuffer(8 * 1024 * 1024)), existsSync('/sys/kernel/mm/transparent_hugepage'));
    // Smaller than one aligned huge page: nothing to advise.
    assert.is(addon.adviseHugePages(new ArrayBuffer(4096)), false);
    assert.throws(() => addon.adviseHugePages(new Uint8Array(8)), (err) => err instanceof TypeError && /ArrayBuffer/.test(err.message));
    assert.throws(() => addon.adviseHugePages(), TypeError);
  });

  test('addon: environBlock() is this process\'s environment; spawn() takes it as envp, NUL-ended entries, empty ones dropped', async () => {
    const block = addon.environBlock();
    assert.ok(Buffer.isBuffer(block));
    const entries = block.toString('utf8').split('\0');
    assert.is(entries.pop(), '');
    assert.equal(entries.sort(), Object.entries(process.env).map(([k, v]) => `${k}=${v}`).sort());
    const env = Buffer.from('B=2\0\0A=1\0', 'utf8');
    const child = rawSpawn('/usr/bin/env', ['env'], { stdio: [-1, -2, -1], env });
    assert.is(await readAll(child.stdout), 'B=2\nA=1\n');
    assert.is(await within(child.status, 'env'), 0);
    assert.throws(() => addon.spawn('/bin/true', ['true'], Buffer.from('A=1'), null, [-1, -1, -1], [], {}),
      (err) => err instanceof TypeError && /NUL-terminated/.test(err.message));
    assert.throws(() => addon.spawn('/bin/true', ['true'], 42, null, [-1, -1, -1], [], {}), TypeError);
  });

  test('addon: moved fds land at their numbers, even two sources that sit at each other\'s target', async () => {
    const [r1, w1] = addon.pipe();
    const [r2, w2] = addon.pipe();
    // r1 goes to r2's number and r2 to r1's: a plain dup2 in order would clobber r2 first.
    const child = rawSpawn(HELPER, ['helper', '--no-log', '--readfd', String(r2), '--readfd', String(r1)],
      { stdio: [-1, -2, -1], flags: { moveFds: [r1, r2, r2, r1] } });
    for (const fd of [r1, r2]) addon.closeFd(fd);
    const feed = (fd, text) => new Socket({ fd, readable: false, writable: true }).end(text);
    feed(w1, 'into the first pipe\n');
    feed(w2, 'into the second\n');
    assert.is(await readAll(child.stdout), echoed('into the first pipe\ninto the second\n'));
    assert.is(await within(child.status, 'helper'), 0);
  });

  test('addon: an argv or envp element that changes between its two reads is refused, never truncated or overrun', () => {
    const before = childrenOf();
    // The addon measures every element, then copies it: a getter can answer longer the second time.
    const growing = (short, long) => {
      const list = [short, 'b'];
      let reads = 0;
      Object.defineProperty(list, 0, { get: () => (reads++ === 0 ? short : long), enumerable: true });
      return list;
    };
    assert.throws(() => addon.spawn('/bin/echo', growing('x', 'xxxx'), [], null, [-1, -1, -1], [], {}),
      (err) => err instanceof TypeError && /argv .*change/.test(err.message));
    assert.throws(() => addon.spawn('/bin/echo', ['echo'], growing('A=1', 'A=1234567'), null, [-1, -1, -1], [], {}),
      (err) => err instanceof TypeError && /envp .*change/.test(err.message));
    assert.equal(newChildren(before), []);
  });

  test('addon: a host whose fds 0, 1 and 2 are closed: pipes land there and still reach the child right', () => {
    const h = helper('closed-stdio');
    const resultPath = join(tmpBase, 'closed-stdio.json');
    // Node reopens a closed 0-2 at startup, so the host closes them itself;
    // /dev/null and the pipes the addon opens then take those numbers.
    const script = `const fs = require('node:fs');
      const a = require(${JSON.stringify(addonPath)});
      a.closeFd(0); a.closeFd(1); a.closeFd(2);
      const c = a.spawn(${JSON.stringify(h.path)}, [${JSON.stringify(h.path)}], [], null, [-2, -2, -2], [], {});
      const ours = [c.stdin, c.stdout, c.stderr];
      fs.writeSync(c.stdin, 'through closed stdio\\n');
      a.closeFd(c.stdin);
      const read = (fd) => { const out = []; const b = Buffer.alloc(65536); let n; while ((n = fs.readSync(fd, b)) > 0) out.push(Buffer.from(b.subarray(0, n))); a.closeFd(fd); return Buffer.concat(out).toString(); };
      const stdout = read(c.stdout), stderr = read(c.stderr);
      a.watch(c.pidfd, (status) => fs.writeFileSync(${JSON.stringify(resultPath)}, JSON.stringify({ ours, stdout, stderr, status })));`;
    const res = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.is(res.status, 0, res.stderr);
    const r = JSON.parse(readFileSync(resultPath, 'utf8'));
    // The parent's ends sit at 0-2 in the host, as intended by this test.
    assert.ok(r.ours.some((fd) => fd <= 2), `parent ends at ${r.ours}`);
    assert.is(r.status, 0);
    assert.is(r.stdout, echoed('through closed stdio\n'));
    assert.is(r.stderr, echoed('through closed stdio\n', 'STDERR'));
    assert.is(h.log(), expectedLog({ env: [], fds: [[0, 'pipe'], [1, 'pipe'], [2, 'pipe']], daemon: 'yes' }));
  });

  test('addon: a stdio source below its slot (stderr from fd 1, stdout from another): each lands right', () => {
    const resultPath = join(tmpBase, 'crossed-stdio.json');
    // With 0-2 closed, the first pipe takes 0 (read) and 1 (write): the child's
    // stderr source (1) is overwritten by its stdout (outW -> 1) unless copied up first.
    const script = `const fs = require('node:fs');
      const a = require(${JSON.stringify(addonPath)});
      a.closeFd(0); a.closeFd(1); a.closeFd(2);
      const [errR, errW] = a.pipe(), [outR, outW] = a.pipe();
      const c = a.spawn('/bin/sh', ['sh', '-c', 'echo out; echo err >&2'], [], null, [-1, outW, errW], [], {});
      a.closeFd(outW); a.closeFd(errW);
      const read = (fd) => { const b = Buffer.alloc(4096); let n, s = ''; while ((n = fs.readSync(fd, b)) > 0) s += b.subarray(0, n); a.closeFd(fd); return s; };
      const fds = [errR, errW, outW > 2], stdout = read(outR), stderr = read(errR);
      a.watch(c.pidfd, (status) => fs.writeFileSync(${JSON.stringify(resultPath)}, JSON.stringify({ fds, stdout, stderr, status })));`;
    const res = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.is(res.status, 0, res.stderr);
    assert.equal(JSON.parse(readFileSync(resultPath, 'utf8')), { fds: [0, 1, true], stdout: 'out\n', stderr: 'err\n', status: 0 });
  });

  test('addon: setsid and setpgid give the child its own session or group', async () => {
    const run = async (flags) => {
      const h = helper('session');
      assert.is(await within(rawSpawn(h.path, [h.path], { flags }).status, 'helper'), 0);
      return h.log();
    };
    const devnull = [[0, '/dev/null'], [1, '/dev/null'], [2, '/dev/null']];
    assert.is(await run({}), expectedLog({ env: [], fds: devnull }));
    assert.is(await run({ setsid: true }), expectedLog({ env: [], fds: devnull, daemon: 'yes', pgrp: 'own', session: 'own' }));
    assert.is(await run({ setpgid: true }), expectedLog({ env: [], fds: devnull, daemon: 'yes', pgrp: 'own' }));
  });

  /**
   * A worker thread spawns sleep and ends; the child stays this process's
   * (reparented to another of its threads). Resolves once the thread is gone
   * from /proc, i.e. past the point where the kernel sends the death signal.
   */
  async function spawnFromEndedThread(flags) {
    const worker = new Worker(`
      const { parentPort } = require('node:worker_threads');
      const { readlinkSync } = require('node:fs');
      const addon = require(${JSON.stringify(addonPath)});
      const tid = readlinkSync('/proc/thread-self').split('/').pop();
      const c = addon.spawn('/bin/sleep', ['sleep', 'infinity'], [], null, [-1, -1, -1], [], ${JSON.stringify(flags)});
      parentPort.postMessage({ tid, pid: c.pid, pidfd: c.pidfd });`, { eval: true });
    const [message] = await within(Promise.all([new Promise((r) => worker.once('message', r)), new Promise((r) => worker.once('exit', r))]), 'worker');
    assert.is(await until(() => !existsSync(`/proc/self/task/${message.tid}`)), true, `thread ${message.tid} did not end`);
    return message;
  }

  test('addon: pdeathsig is sent when the spawning thread ends; without it the child lives on', async () => {
    const SIGKILL = 9, SIGTERM = 15;
    const unreaped = new Set();
    /** Hands the pidfd to watch(), which closes it once reaped. */
    const reap = (c) => (unreaped.delete(c), within(new Promise((r) => addon.watch(c.pidfd, r)), `status of ${c.pid}`));
    try {
      const orphan = await spawnFromEndedThread({});
      unreaped.add(orphan);
      assert.is(processState(orphan.pid), 'alive');
      assert.is(addon.kill(orphan.pidfd, SIGTERM), true);
      assert.is(await reap(orphan), SIGTERM);

      const bound = await spawnFromEndedThread({ parentDeathSignal: SIGKILL });
      unreaped.add(bound);
      assert.is(await until(() => processState(bound.pid) === 'zombie'), true, `sleep ${bound.pid} is ${processState(bound.pid)}`);
      assert.is(await reap(bound), SIGKILL);
      assert.is(processState(bound.pid), 'gone');
    } finally {
      for (const c of unreaped) {
        addon.kill(c.pidfd, SIGKILL);
        await reap(c);
      }
    }
  });

  test('addon: a worker terminated with a watched child running kills and reaps it', async () => {
    const worker = new Worker(`
      const { parentPort } = require('node:worker_threads');
      const addon = require(${JSON.stringify(addonPath)});
      const c = addon.spawn('/bin/sleep', ['sleep', 'infinity'], [], null, [-1, -1, -1], [], {});
      addon.watch(c.pidfd, () => parentPort.postMessage('the callback ran'));
      parentPort.postMessage(c.pid);`, { eval: true });
    const messages = [];
    worker.on('message', (m) => messages.push(m));
    const pid = await within(new Promise((r) => worker.once('message', r)), 'worker');
    try {
      assert.is(processState(pid), 'alive');
      // Without the kill, terminate() would wait for a child that never ends.
      await within(worker.terminate(), 'terminate()');
      assert.is(processState(pid), 'gone');
      assert.equal(messages, [pid]);
    } finally {
      if (processState(pid) === 'alive') process.kill(pid, 'SIGKILL');
    }
  });
}

test.run();
