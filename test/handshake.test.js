// requireHandshake(): the exec helper applies every attribute, says it is
// ready, and blocks until handshakeNotify(); it has not exec'd in between
// (/proc/PID/exe). Failures before the handshake reach handshakeWait() and
// wait() with their errno and step. The helper itself, driven directly:
// EOF or a wrong byte on its handshake pipe, and env(1)'s exit statuses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '../dist/index.js';
import { ENGINE, pool, helper, expectedLog, echoed, exeOf, processState, rejectsWith, tmpBase } from './_support.js';

const native = ENGINE === 'native';
const opts = (more = {}) => ({ pool: pool(), ...more });
const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));
const EXEC_HELPER = fileURLToPath(new URL('../dist/native/spawnpool-exec-helper', import.meta.url));
const SLEEP = realpathSync('/bin/sleep');

test('requireHandshake() needs runAsync(); the handshake methods need requireHandshake()', async () => {
  assert.match((await rejectsWith(new Command('/bin/true').requireHandshake().run(opts()), 'EINVAL')).message, /runAsync\(\)/);
  if (!native) return;
  const h = await new Command('/bin/sleep', 'infinity').runAsync(opts());
  try {
    assert.match((await rejectsWith(h.handshakeWait(), 'EINVAL')).message, /requireHandshake\(\)/);
    assert.match((await rejectsWith(h.handshakeNotify(), 'EINVAL')).message, /requireHandshake\(\)/);
  } finally {
    await h.abort();
  }
});

if (!native) {
  test('node engine: requireHandshake() rejects ENOTSUP naming it', async () => {
    const err = await rejectsWith(new Command('/bin/true').requireHandshake().runAsync(opts()), 'ENOTSUP');
    assert.match(err.message, /requireHandshake\(\)/);
  });
}

if (native) {
  test('the child waits before exec until handshakeNotify(), with its attributes applied', async () => {
    const h = await new Command('/bin/sleep', 'infinity').requireHandshake().umask(0o077).maxFiles(99).runAsync(opts());
    try {
      await h.handshakeWait();
      // Ready, not exec'd: still the helper, with the limits already in place.
      assert.is(exeOf(h.pid), EXEC_HELPER);
      assert.match(await import('node:fs').then((fs) => fs.readFileSync(`/proc/${h.pid}/limits`, 'utf8')), /^Max open files\s+99\s+99/m);
      await h.handshakeNotify();
      while (exeOf(h.pid) !== SLEEP) await tick();
    } finally {
      await h.abort();
    }
    await rejectsWith(h.wait(), 'EABORTED');
  });

  test('through the helper the target gets exactly its fds (passFd kept, the helper\'s pipes gone), umask and cwd', async () => {
    const h = helper('hs');
    const passedPath = join(tmpBase, 'hs-passed');
    writeFileSync(passedPath, '');
    const passed = openSync(passedPath, 'r');
    const dir = realpathSync(tmpBase);
    try {
      const running = await new Command(h.path, 'x').passFd(passed).umask(0o027).cwd(dir).requireHandshake().runAsync(opts());
      await running.handshakeWait();
      await running.handshakeNotify();
      assert.is((await running.wait()).status, 0);
    } finally {
      closeSync(passed);
    }
    const fds = [[0, '/dev/null'], [1, '/dev/null'], [2, 'pipe'], [passed, passedPath]];
    assert.is(h.log(), expectedLog({ args: ['x'], fds, umask: '0027', cwd: dir }));
  });

  test('send buffers through the helper: read at their numbers, beside a passed fd; the helper\'s own pipes gone', async () => {
    const h = helper('hs-send');
    const passedPath = join(tmpBase, 'hs-send-passed');
    writeFileSync(passedPath, '');
    const passed = openSync(passedPath, 'r');
    const big = 'y'.repeat(200 * 1024);
    let at = [];
    try {
      const cmd = new Command(h.path).passFd(passed).captureOutput().requireHandshake();
      at = [cmd.sendBuffer('small\n'), cmd.sendBuffer(big)];
      cmd.args('--readfd', at[0], '--readfd', at[1]);
      const running = await cmd.runAsync(opts());
      await running.handshakeWait();
      await running.handshakeNotify();
      assert.is((await running.wait()).stdout, echoed(`small\n${big}`));
    } finally {
      closeSync(passed);
    }
    const fds = [[0, '/dev/null'], [1, 'pipe'], [2, 'pipe'], [passed, passedPath], [at[0], 'pipe'], [at[1], 'pipe']].sort((a, b) => a[0] - b[0]);
    assert.is(h.log(), expectedLog({ args: ['--readfd', String(at[0]), '--readfd', String(at[1])], fds }));
  });

  test('a handshake run ends like any other: output, status; notify before wait is fine', async () => {
    const h = await new Command('/bin/sh', '-c', 'echo hello; exit 3').requireHandshake().captureOutput().runAsync(opts());
    await h.handshakeNotify();
    await h.handshakeWait();
    const r = await h.wait({ status: true });
    assert.is(r.status, 3);
    assert.is(r.stdout, 'hello\n');
  });

  test('a step that fails before the handshake: handshakeWait() and wait() reject with its errno and step', async () => {
    const h = await new Command('/bin/true').requireHandshake().maxFiles(2 ** 40).runAsync(opts());
    const e1 = await rejectsWith(h.handshakeWait(), 'EPERM');
    assert.match(e1.message, /setrlimit\(RLIMIT_NOFILE\): EPERM/);
    const e2 = await rejectsWith(h.wait(), 'EPERM');
    assert.match(e2.message, /setrlimit\(RLIMIT_NOFILE\): EPERM/);
    assert.is(e2.exitStatus, 125);
  });

  test('abort() while the child waits for the handshake kills and reaps it', async () => {
    const h = await new Command('/bin/sleep', 'infinity').requireHandshake().runAsync(opts());
    await h.handshakeWait();
    await h.abort();
    await rejectsWith(h.wait(), 'EABORTED');
    assert.is(processState(h.pid), 'gone');
    // Waiting again once it is over: a clear error, not a hang.
    await rejectsWith(h.handshakeWait(), 'EABORTED');
  });

  /** Runs the helper directly with its status pipe on fd 3 and handshake pipe on fd 4. */
  function direct(args, { go } = {}) {
    const child = spawn(EXEC_HELPER, ['--status-fd', '3', '--handshake-fd', '4', ...args], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    let status = '';
    child.stdio[3].on('data', (d) => {
      status += d;
      if (status === 'R\n' && go !== undefined) {
        if (go === null) child.stdio[4].end();
        else child.stdio[4].end(go);
      }
    });
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, status })));
  }

  test('the helper itself: EOF or a wrong byte on the handshake pipe fails the handshake; env(1) exit statuses', async () => {
    assert.equal(await direct(['--', '/bin/true', 'true'], { go: null }), { code: 125, status: 'R\nE 32 handshake(read)\n' });
    assert.equal(await direct(['--', '/bin/true', 'true'], { go: 'x' }), { code: 125, status: 'R\nE 71 handshake(read)\n' });
    assert.equal(await direct(['--', '/bin/true', 'true'], { go: '1' }), { code: 0, status: 'R\n' });
    assert.equal(await direct(['--', `${tmpBase}/missing`, 'x'], { go: '1' }), { code: 127, status: 'R\nE 2 execve\n' });
    assert.equal(await direct(['--', tmpBase, 'x'], { go: '1' }), { code: 126, status: 'R\nE 13 execve\n' });
    assert.equal(await direct(['--bogus', '1', '--', '/bin/true', 'true']), { code: 125, status: 'E 22 exec helper arguments\n' });
    assert.equal(await direct(['--maxProcesses', 'x', '--', '/bin/true', 'true']), { code: 125, status: 'E 22 exec helper arguments\n' });
    assert.equal(await direct(['/bin/true']), { code: 125, status: 'E 22 exec helper arguments\n' });
    assert.not.ok(existsSync(`${tmpBase}/missing`));
  });
}

test.run();
