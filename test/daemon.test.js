// daemonize() and pidFile() through the exec helper: run() resolves when the
// intermediate exits, with result.daemonPid; the daemon runs in /, outside
// our session and group, with no parent-death signal; the pidfile holds its
// pid and stays write-locked by it; closing or destroying the pool leaves
// it running. On the child_process engine: ENOTSUP.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { Command, SpawnPool } from '../dist/index.js';
import { ENGINE, HELPER, pool, helper, expectedLog, processState, rejectsWith, throwsWith, tmpBase } from './_support.js';

const native = ENGINE === 'native';
const opts = (more = {}) => ({ pool: pool(), ...more });
const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));
let serial = 0;
const pidPath = () => join(tmpBase, `daemon-${++serial}.pid`);

/** Daemons this file started, killed at the end whatever happened. */
const daemons = new Set();
test.after(() => {
  for (const pid of daemons) if (processState(pid) === 'alive') process.kill(pid, 'SIGKILL');
});

/** Who holds a write lock on `path`, as F_GETLK sees it from another process. */
async function lockHolder(path) {
  const r = await new Command(HELPER, '--no-log', '--lock-probe', path).captureOutput().run(opts());
  return /^LOCK:(\S+)$/m.exec(r.stdout)[1];
}

test('builder: daemonize() conflicts with cwd(), buffers and runAsync(); pidFile() needs daemonize()', async () => {
  const c = () => new Command('/bin/true');
  assert.match(throwsWith(() => c().cwd('/tmp').daemonize(), 'EINVAL').message, /daemonize\(\)/);
  assert.match(throwsWith(() => c().daemonize().cwd('/tmp'), 'EINVAL').message, /cwd\(\)/);
  assert.match(throwsWith(() => c().inputBuffer('x').daemonize(), 'EINVAL').message, /inputBuffer\(\)/);
  assert.match(throwsWith(() => c().captureOutput().daemonize(), 'EINVAL').message, /daemonize\(\): a daemon cannot use captureOutput\(\)/);
  assert.match(throwsWith(() => c().daemonize().captureError(), 'EINVAL').message, /captureError\(\)/);
  assert.match(throwsWith(() => c().daemonize().captureCombined(), 'EINVAL').message, /captureCombined\(\)/);
  assert.match(throwsWith(() => c().daemonize().inputBuffer('x'), 'EINVAL').message, /inputBuffer\(\)/);
  assert.match(throwsWith(() => c().parentDeathSignal('SIGTERM').daemonize(), 'EINVAL').message, /drop parentDeathSignal\(\)/);
  assert.match(throwsWith(() => c().daemonize().parentDeathSignal(9), 'EINVAL').message, /parentDeathSignal\(\): a daemon outlives/);
  assert.match((await rejectsWith(c().daemonize().runAsync(opts()), 'EINVAL')).message, /runAsync\(\)/);
  assert.match((await rejectsWith(c().pidFile(pidPath()).run(opts()), 'EINVAL')).message, /pidFile\(\) needs daemonize\(\)/);
});

if (!native) {
  test('node engine: daemonize() rejects ENOTSUP naming it', async () => {
    const err = await rejectsWith(new Command('/bin/true').daemonize().pidFile(pidPath()).run(opts()), 'ENOTSUP');
    assert.match(err.message, /daemonize\(\)/);
  });
}

if (native) {
  test('a daemon: run() resolves with daemonPid; pidfile written and locked by it; in /, own session, no death signal', async () => {
    const h = helper('daemon');
    const pidfile = pidPath();
    const outPath = join(tmpBase, `daemon-out-${serial}`);
    const out = openSync(outPath, 'w');
    let r;
    try {
      r = await new Command(h.path, '--pdeathsig', '--sleep', '100000000').daemonize().pidFile(pidfile).outputFd(out).run(opts());
    } finally {
      closeSync(out);
    }
    daemons.add(r.daemonPid);
    assert.is(r.status, 0);
    assert.ok(r.daemonPid > 0 && r.daemonPid !== r.pid);
    // The intermediate is reaped; the daemon runs.
    assert.is(processState(r.pid), 'gone');
    assert.is(processState(r.daemonPid), 'alive');
    // Written before run() resolved.
    assert.is(readFileSync(pidfile, 'utf8'), `${r.daemonPid}\n`);
    assert.is(await lockHolder(pidfile), String(r.daemonPid));
    while (!h.hasLog()) await tick();
    // The locked pidfile's fd stays open in the daemon.
    const fds = [[0, '/dev/null'], [1, outPath], [2, '/dev/null'], [3, pidfile]];
    assert.is(h.log(), expectedLog({ args: ['--pdeathsig', '--sleep', '100000000'], fds, daemon: 'yes', cwd: '/' }));
    while (!readFileSync(outPath, 'utf8').includes('\n')) await tick();
    assert.is(readFileSync(outPath, 'utf8'), 'PDEATHSIG:0\n');
    const stat = readFileSync(`/proc/${r.daemonPid}/stat`, 'utf8');
    const [, , pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    assert.is(pgrp, r.pid, 'the daemon is in the group the intermediate made');
    assert.is(session, r.pid, 'and in its session, which it does not lead');
    process.kill(r.daemonPid, 'SIGKILL');
    while (processState(r.daemonPid) === 'alive') await tick();
    // The lock goes with it.
    assert.is(await lockHolder(pidfile), 'none');
  });

  test('pool.close() and pool.destroy() leave daemons running', async () => {
    for (const end of ['close', 'destroy']) {
      const own = new SpawnPool({ threads: 1, engine: 'native' });
      const pidfile = pidPath();
      const r = await new Command('/bin/sleep', 'infinity').daemonize().pidFile(pidfile).run({ pool: own });
      daemons.add(r.daemonPid);
      await own[end]();
      assert.is(processState(r.daemonPid), 'alive', end);
      assert.is(await lockHolder(pidfile), String(r.daemonPid));
      process.kill(r.daemonPid, 'SIGKILL');
    }
  });

  test('a daemon without a pidfile; a pidfile that was there before is truncated', async () => {
    const r = await new Command('/bin/sleep', 'infinity').daemonize().run(opts());
    daemons.add(r.daemonPid);
    assert.is(processState(r.daemonPid), 'alive');
    process.kill(r.daemonPid, 'SIGKILL');
    const pidfile = pidPath();
    writeFileSync(pidfile, 'a much longer content than any pid\n');
    const r2 = await new Command('/bin/sleep', 'infinity').daemonize().pidFile(pidfile).run(opts());
    daemons.add(r2.daemonPid);
    assert.is(readFileSync(pidfile, 'utf8'), `${r2.daemonPid}\n`);
    process.kill(r2.daemonPid, 'SIGKILL');
  });

  test('a pidfile replaced between the helper\'s open and its lock: it starts over, and locks and writes the new file', async () => {
    // A test build of the helper renames a fresh file over the path just
    // before its first F_SETLK (test/helper/replace-pidfile.c).
    const replacing = join(dirname(HELPER), 'exec-helper-replaced');
    const pidfile = pidPath();
    const r = spawnSync(replacing, ['--status-fd', '3', '--daemonize', '--pidfile', pidfile, '--', '/bin/sleep', 'sleep', 'infinity'],
      { stdio: ['ignore', 'ignore', 'ignore', 'pipe'], env: { SPAWNPOOL_TEST_REPLACE: pidfile }, encoding: 'utf8' });
    // Status lines: "D <pid>", or "E <errno> <step>" on a failure.
    assert.is(r.status, 0, r.output[3]);
    const daemonPid = Number(/^D (\d+)$/m.exec(r.output[3])[1]);
    daemons.add(daemonPid);
    assert.is(processState(daemonPid), 'alive');
    // Had it kept the first file, the pid would be in an unlinked inode and the path's file empty.
    assert.is(readFileSync(pidfile, 'utf8'), `${daemonPid}\n`);
    assert.is(await lockHolder(pidfile), String(daemonPid));
    assert.not.ok(existsSync(`${pidfile}.fresh`));
    process.kill(daemonPid, 'SIGKILL');
  });

  test('failures in the daemon reach run() with the errno and the step: a locked pidfile, an rlimit, exec', async () => {
    const pidfile = pidPath();
    const first = await new Command('/bin/sleep', 'infinity').daemonize().pidFile(pidfile).run(opts());
    daemons.add(first.daemonPid);
    // F_SETLK: EAGAIN or EACCES, by the kernel's choice.
    let err;
    try {
      await new Command('/bin/sleep', 'infinity').daemonize().pidFile(pidfile).run(opts());
    } catch (e) {
      err = e;
    }
    assert.ok(err && (err.code === 'EAGAIN' || err.code === 'EACCES'), String(err));
    assert.match(err.message, /fcntl\(pidfile, F_SETLK\): E(AGAIN|ACCES)/);
    assert.is(err.exitStatus, 125, 'the intermediate saw the daemon fail before the pidfile was written');
    // Untouched by the loser.
    assert.is(readFileSync(pidfile, 'utf8'), `${first.daemonPid}\n`);
    process.kill(first.daemonPid, 'SIGKILL');

    const e2 = await rejectsWith(new Command('/bin/sleep', 'infinity').daemonize().maxFiles(2 ** 40).run(opts()), 'EPERM');
    assert.match(e2.message, /setrlimit\(RLIMIT_NOFILE\): EPERM/);

    // execve's own ENOENT (a missing interpreter), past the library's checks.
    writeFileSync(join(tmpBase, 'daemon-bad-interp'), `#!${join(tmpBase, 'daemon-no-such-interpreter')}\n`);
    chmodSync(join(tmpBase, 'daemon-bad-interp'), 0o755);
    const e3 = await rejectsWith(new Command(join(tmpBase, 'daemon-bad-interp')).daemonize().run(opts()), 'ENOENT');
    assert.match(e3.message, /execve: ENOENT/);
    assert.not.ok(existsSync(join(tmpBase, 'daemon-no-such-interpreter')));
  });
}

test.run();
