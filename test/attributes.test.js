// Process attributes the native engine's vfork child applies before exec:
// umask, rlimits, capabilities, credentials and supplementary groups,
// no_new_privs, the parent-death signal; each failing step named in the
// error. Read back from /proc/PID/status and /proc/PID/limits of the child,
// from id(1) and from the test helper. The child_process engine rejects
// each of them with ENOTSUP naming it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Command } from '../dist/index.js';
import { ENGINE, HELPER, pool, helper, expectedLog, exeOf, isRoot, reachableCopy, rejectsWith, rootTest, throwsWith } from './_support.js';

const native = ENGINE === 'native';
const opts = (more = {}) => ({ pool: pool(), ...more });
const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));
const SLEEP = realpathSync('/bin/sleep');
const CAP_NET_ADMIN = 12;

// A user with a supplementary group, made for this run and removed after.
const USER = `spu${process.pid}`;
const SUPP = `spg${process.pid}`;
const user = {};
if (isRoot) test.before(() => {
  execFileSync('groupadd', [SUPP]);
  execFileSync('useradd', ['-M', '-U', '-G', SUPP, '-s', '/usr/sbin/nologin', USER]);
  user.uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }));
  user.gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }));
  user.supp = Number(execFileSync('getent', ['group', SUPP], { encoding: 'utf8' }).split(':')[2]);
});
if (isRoot) test.after(() => {
  spawnSync('userdel', [USER]);
  spawnSync('groupdel', [USER]);
  spawnSync('groupdel', [SUPP]);
});

/** Runs `sleep infinity` with `configure` applied; returns /proc facts once it runs sleep, then ends it. */
async function sleeping(configure, read) {
  const running = await configure(new Command('/bin/sleep', 'infinity')).runAsync(opts());
  try {
    while (exeOf(running.pid) !== SLEEP) await tick();
    return read(running.pid);
  } finally {
    await running.abort();
  }
}

function status(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)[1];
  return {
    caps: Object.fromEntries(['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map((f) => [f, BigInt(`0x${field(f)}`)])),
    uid: field('Uid').split(/\s+/).map(Number),
    gid: field('Gid').split(/\s+/).map(Number),
    groups: field('Groups').trim().split(/\s+/).filter(Boolean).map(Number),
    noNewPrivs: Number(field('NoNewPrivs')),
  };
}

/** soft and hard of one /proc/PID/limits line. */
function limits(pid) {
  const text = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const of = (name) => {
    const m = new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text);
    return [m[1], m[2]];
  };
  return { nproc: of('Max processes'), nofile: of('Max open files'), memlock: of('Max locked memory'), core: of('Max core file size') };
}

// ---- the builder (engine-independent) -----------------------------------------

test('builder: each attribute method validates its argument at once (EINVAL naming the method)', () => {
  const c = () => new Command('/bin/true');
  const cases = [
    [() => c().umask(0o1000), /umask\(\)/], [() => c().umask(-1), /umask\(\)/], [() => c().umask('022'), /umask\(\)/],
    [() => c().maxProcesses(-1), /maxProcesses\(\)/], [() => c().maxFiles(1.5), /maxFiles\(\)/],
    [() => c().maxMemLock('1'), /maxMemLock\(\)/], [() => c().maxCoreSize(Infinity), /maxCoreSize\(\)/],
    [() => c().uid(-1), /uid\(\)/], [() => c().gid(2 ** 31), /gid\(\)/], [() => c().uid('0'), /uid\(\)/],
    [() => c().allowCap('CAP_NOPE'), /allowCap\(\).*CAP_NOPE/], [() => c().allowCap(64), /allowCap\(\)/],
    [() => c().parentDeathSignal('SIGNOPE'), /parentDeathSignal\(\)/], [() => c().parentDeathSignal(0), /parentDeathSignal\(\)/],
    [() => c().pidFile(''), /pidFile\(\)/],
  ];
  for (const [fn, pattern] of cases) assert.match(throwsWith(fn, 'EINVAL').message, pattern);
  // Valid ones return the command.
  const cmd = c();
  assert.is(cmd.umask(0).maxProcesses(0).maxFiles(64).maxMemLock(0).maxCoreSize(0).uid(0).gid(0).clearCaps()
    .allowCap('CAP_NET_ADMIN').allowCap('net_raw').allowCap(0).noNewPrivileges().parentDeathSignal('SIGTERM'), cmd);
});

// ---- the child_process engine ----------------------------------------------------

if (!native) {
  test('node engine: every process attribute rejects ENOTSUP naming it', async () => {
    const cases = [
      ['umask()', (c) => c.umask(0o22)], ['maxProcesses()', (c) => c.maxProcesses(10)], ['maxFiles()', (c) => c.maxFiles(10)],
      ['maxMemLock()', (c) => c.maxMemLock(0)], ['maxCoreSize()', (c) => c.maxCoreSize(0)], ['uid()', (c) => c.uid(0)],
      ['gid()', (c) => c.gid(0)], ['clearCaps()', (c) => c.clearCaps()], ['allowCap()', (c) => c.allowCap(1)],
      ['noNewPrivileges()', (c) => c.noNewPrivileges()], ['parentDeathSignal()', (c) => c.parentDeathSignal('SIGTERM')],
    ];
    for (const [name, configure] of cases) {
      const err = await rejectsWith(configure(new Command('/bin/true')).run(opts()), 'ENOTSUP');
      assert.ok(err.message.includes(name), err.message);
    }
  });
}

// ---- the native engine ---------------------------------------------------------

if (native) {
  test('addon: bad attribute flags throw before anything is spawned', () => {
    const addon = createRequire(import.meta.url)(fileURLToPath(new URL('../dist/native/spawnpool_native.node', import.meta.url)));
    const t = (flags, kind, pattern) => {
      let child;
      try {
        child = addon.spawn('/bin/true', ['true'], [], null, [-1, -1, -1], [], flags);
      } catch (err) {
        assert.ok(err instanceof kind && pattern.test(err.message), `${JSON.stringify(flags)}: ${err}`);
        return;
      }
      // Spawned after all: reap it (watch closes the pidfd), then fail.
      addon.watch(child.pidfd, () => undefined);
      assert.unreachable(`${JSON.stringify(flags)} spawned pid ${child.pid}`);
    };
    t({ umask: 0o1000 }, RangeError, /umask/);
    t({ umask: '022' }, TypeError, /umask/);
    t({ maxFiles: 1.5 }, RangeError, /maxFiles/);
    t({ maxCoreSize: 2 ** 60 }, RangeError, /maxCoreSize/);
    t({ uid: -2 }, RangeError, /uid/);
    t({ clearCaps: 1 }, TypeError, /clearCaps/);
    t({ allowedCaps: [64] }, RangeError, /allowedCaps/);
    t({ allowedCaps: 'x' }, TypeError, /allowedCaps/);
    t({ groups: ['a'] }, TypeError, /groups/);
    assert.equal(addon.groupList(-1, -1), []);
    assert.equal(addon.groupList(-1, 4242), [4242]);
    // The test user exists only when root could make it.
    if (isRoot) assert.equal(addon.groupList(user.uid, -1).sort((a, b) => a - b), [user.gid, user.supp].sort((a, b) => a - b));
  });

  test('umask(): the child starts with that mask', async () => {
    const h = helper();
    await new Command(h.path).umask(0o027).run(opts());
    assert.is(h.log(), expectedLog({ umask: '0027' }));
    const h2 = helper();
    await new Command(h2.path).umask(0).run(opts());
    assert.is(h2.log(), expectedLog({ umask: '0000' }));
  });

  test('maxProcesses(), maxFiles(), maxMemLock(), maxCoreSize(): soft = hard in /proc/PID/limits', async () => {
    const got = await sleeping((c) => c.maxProcesses(77).maxFiles(123).maxMemLock(65536).maxCoreSize(0), limits);
    assert.equal(got, { nproc: ['77', '77'], nofile: ['123', '123'], memlock: ['65536', '65536'], core: ['0', '0'] });
    // Unset: inherited from this process.
    const mine = limits('self');
    assert.equal(await sleeping((c) => c, limits), mine);
  });

  rootTest(test, 'uid() and gid(): the user, its group and its supplementary groups (id)', async () => {
    const r = await new Command('/usr/bin/id').uid(user.uid).gid(user.gid).captureOutput().run(opts());
    assert.is(r.stdout, `uid=${user.uid}(${USER}) gid=${user.gid}(${USER}) groups=${user.gid}(${USER}),${user.supp}(${SUPP})\n`);
    // gid() alone: that group, and no other (root's groups are dropped).
    const g = await new Command('/usr/bin/id').gid(user.supp).captureOutput().run(opts());
    assert.is(g.stdout, `uid=0(root) gid=${user.supp}(${SUPP}) groups=${user.supp}(${SUPP})\n`);
  });

  rootTest(test, 'a user in 70 more groups, past the 64 the lookup first makes room for: all of them, direct and through the helper', async () => {
    const more = Array.from({ length: 70 }, (_, i) => `${SUPP}m${i}`);
    const sorted = (text) => text.trim().split(/\s+/).map(Number).sort((a, b) => a - b);
    try {
      for (const g of more) execFileSync('groupadd', [g]);
      execFileSync('usermod', ['-a', '-G', more.join(','), USER]);
      const expected = sorted(execFileSync('id', ['-G', USER], { encoding: 'utf8' }));
      assert.is(expected.length, 72);
      const direct = await new Command('/usr/bin/id', '-G').uid(user.uid).gid(user.gid).captureOutput().run(opts());
      assert.equal(sorted(direct.stdout), expected);
      const running = await new Command('/usr/bin/id', '-G').uid(user.uid).gid(user.gid).requireHandshake().captureOutput().runAsync(opts());
      await running.handshakeWait();
      await running.handshakeNotify();
      assert.equal(sorted((await running.wait()).stdout), expected);
    } finally {
      execFileSync('usermod', ['-G', SUPP, USER]);
      for (const g of more) spawnSync('groupdel', [g]);
    }
  });

  rootTest(test, 'a non-root uid with allowCap(): only that cap, in every set, ambient included', async () => {
    const s = await sleeping((c) => c.uid(user.uid).gid(user.gid).clearCaps().allowCap('CAP_NET_ADMIN'), status);
    const only = 1n << BigInt(CAP_NET_ADMIN);
    assert.equal(s.caps, { CapInh: only, CapPrm: only, CapEff: only, CapBnd: only, CapAmb: only });
    assert.equal(s.uid, [user.uid, user.uid, user.uid, user.uid]);
    assert.equal(s.gid, [user.gid, user.gid, user.gid, user.gid]);
    assert.equal(s.groups.sort((a, b) => a - b), [user.gid, user.supp].sort((a, b) => a - b));
  });

  rootTest(test, 'a non-root uid without caps asked for: every set empty, the bounding set too', async () => {
    const s = await sleeping((c) => c.uid(user.uid).gid(user.gid), status);
    assert.equal(s.caps, { CapInh: 0n, CapPrm: 0n, CapEff: 0n, CapBnd: 0n, CapAmb: 0n });
  });

  rootTest(test, 'clearCaps() as root: nothing left; with allowCap() that cap, not ambient (root needs none)', async () => {
    const none = await sleeping((c) => c.clearCaps(), status);
    assert.equal(none.caps, { CapInh: 0n, CapPrm: 0n, CapEff: 0n, CapBnd: 0n, CapAmb: 0n });
    assert.equal(none.uid, [0, 0, 0, 0]);
    const one = await sleeping((c) => c.clearCaps().allowCap(CAP_NET_ADMIN).allowCap('CAP_NET_RAW'), status);
    const both = (1n << 12n) | (1n << 13n);
    assert.equal(one.caps, { CapInh: both, CapPrm: both, CapEff: both, CapBnd: both, CapAmb: 0n });
    // Untouched: this process's sets.
    const mine = status('self').caps;
    const kept = await sleeping((c) => c, status);
    assert.is(kept.caps.CapBnd, mine.CapBnd);
    assert.is(kept.caps.CapEff, mine.CapEff);
  });

  test('noNewPrivileges(): NoNewPrivs in /proc/PID/status', async () => {
    assert.is((await sleeping((c) => c.noNewPrivileges(), status)).noNewPrivs, 1);
    assert.is((await sleeping((c) => c, status)).noNewPrivs, 0);
  });

  const pdeathsig = async (configure, helperPath = HELPER) => {
    const r = await configure(new Command(helperPath, '--no-log', '--pdeathsig')).captureOutput().run(opts());
    return /^PDEATHSIG:(\d+)$/m.exec(r.stdout)[1];
  };

  test('parentDeathSignal(): replaces SIGKILL', async () => {
    assert.is(await pdeathsig((c) => c), '9');
    assert.is(await pdeathsig((c) => c.parentDeathSignal('SIGTERM')), '15');
  });

  rootTest(test, 'parentDeathSignal() survives a change of credentials', async () => {
    // The kernel clears it on setreuid: the child sets it after. The user runs a copy it can reach.
    assert.is(await pdeathsig((c) => c.parentDeathSignal('SIGUSR1').uid(user.uid).gid(user.gid), reachableCopy().helper), '10');
  });

  test('failed steps: the errno is the code, the message names the step; no child is left', async () => {
    const e = await rejectsWith(new Command('/bin/true').maxFiles(2 ** 40).run(opts()), 'EPERM');
    assert.match(e.message, /setrlimit\(RLIMIT_NOFILE\): EPERM/);
    assert.is(e.pid, undefined);
  });

  rootTest(test, 'failed steps after the credentials change: chdir as the new uid', async () => {
    // A cwd the new uid may not enter: chdir comes after the credentials.
    const e2 = await rejectsWith(new Command('/bin/true').uid(user.uid).cwd('/root').run(opts()), 'EACCES');
    assert.match(e2.message, /chdir: EACCES/);
  });

  /** Runs `script` (an ES module printing JSON) in Node through `prefix`, with `spawnOpts`; returns its JSON. */
  function host(script, prefix = [], spawnOpts = {}) {
    const [file, ...args] = [...prefix, process.execPath, '--input-type=module', '-e', script];
    const res = spawnSync(file, args, { cwd: '/', encoding: 'utf8', timeout: 30_000, ...spawnOpts });
    assert.is(res.status, 0, res.stderr);
    return JSON.parse(res.stdout);
  }

  rootTest(test, 'failed steps of a non-root host: rlimit above the hard limit, setregid, setgroups, bounding set', () => {
    // Node running as the test user, spawning through the library.
    const script = `
      import { Command, SpawnPool } from ${JSON.stringify(reachableCopy().entry)};
      import { readFileSync } from 'node:fs';
      const pool = new SpawnPool({ threads: 1, engine: 'native' });
      const hard = Number(/^Max open files\\s+\\S+\\s+(\\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))[1]);
      const out = {};
      const cases = {
        rlimit: new Command('/bin/true').maxFiles(hard + 1),
        uid: new Command('/bin/true').uid(0),   // root's groups come first
        gid: new Command('/bin/true').gid(0),
        caps: new Command('/bin/true').clearCaps(),
        fine: new Command('/bin/true').maxFiles(hard).umask(0o77),
      };
      for (const [name, cmd] of Object.entries(cases)) {
        try { out[name] = (await cmd.run({ pool })).status; } catch (err) { out[name] = [err.code, err.message]; }
      }
      await pool.destroy();
      process.stdout.write(JSON.stringify(out));`;
    const out = host(script, [], { uid: user.uid, gid: user.gid });
    assert.is(out.fine, 0);
    const expect = [['rlimit', 'EPERM', 'setrlimit(RLIMIT_NOFILE)'], ['uid', 'EPERM', 'setgroups'], ['gid', 'EPERM', 'setregid'],
      ['caps', 'EPERM', 'prctl(PR_CAPBSET_DROP)']];
    for (const [name, code, step] of expect) {
      assert.is(out[name][0], code, `${name}: ${out[name]}`);
      assert.ok(out[name][1].includes(`${step}: ${code}`), out[name][1]);
    }
  });

  rootTest(test, 'failed step of a root host without CAP_SETUID: setreuid', () => {
    const script = `
      import { Command, SpawnPool } from ${JSON.stringify(reachableCopy().entry)};
      const pool = new SpawnPool({ threads: 1, engine: 'native' });
      let out;
      try { out = (await new Command('/bin/true').uid(${user.uid}).gid(${user.gid}).run({ pool })).status; } catch (err) { out = [err.code, err.message]; }
      await pool.destroy();
      process.stdout.write(JSON.stringify(out));`;
    const out = host(script, ['/usr/bin/setpriv', '--bounding-set', '-setuid']);
    assert.is(out[0], 'EPERM', String(out));
    assert.ok(out[1].includes('setreuid: EPERM'), out[1]);
  });
}

test.run();
