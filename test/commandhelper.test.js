// The virCommand behaviours, checked against the helper's exact log: argv,
// sorted env, the child's fd table, group, cwd, umask, and echoed bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSync, closeSync, fstatSync, readFileSync, writeFileSync, mkdtempSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Command } from '../dist/index.js';
import { ENGINE, pool, helper, expectedLog, echoed, inheritedEnv, tmpBase, rejectsWith } from './_support.js';

const opts = () => ({ pool: pool() });

test('a plain run: no args, the whole env inherited, stdio /dev/null, no other fd', async () => {
  const h = helper();
  const r = await new Command(h.path).run(opts());
  assert.is(r.status, 0);
  assert.ok(r.pid > 0);
  assert.is(r.stdout, undefined);
  assert.is(h.log(), expectedLog());
});

test('a command can run again', async () => {
  const h = helper();
  const cmd = new Command(h.path, 'again');
  const first = await cmd.run(opts());
  const firstLog = h.log();
  const second = await cmd.run(opts());
  assert.is(h.log(), firstLog);
  assert.is(firstLog, expectedLog({ args: ['again'] }));
  assert.is.not(first.pid, second.pid);
});

test('passFd keeps the fd number; closeParent closes the parent copy once spawned', async () => {
  const h = helper();
  const sharedPath = join(tmpBase, 'shared.log');
  const childPath = join(tmpBase, 'conf.txt');
  writeFileSync(childPath, 'conf\n');
  const shared = openSync(sharedPath, 'w+');
  const childOnly = openSync(childPath, 'r');
  try {
    await new Command(h.path).passFd(shared).passFd(childOnly, { closeParent: true }).run(opts());
    const fds = [[0, '/dev/null'], [1, '/dev/null'], [2, 'pipe'], [shared, sharedPath], [childOnly, childPath]]
      .sort((a, b) => a[0] - b[0]);
    assert.is(h.log(), expectedLog({ fds }));
    fstatSync(shared); // still open
    assert.throws(() => fstatSync(childOnly), /EBADF/);
  } finally {
    closeSync(shared);
  }
});

test('closeParent also closes the parent copy when the run fails', async () => {
  const fd = openSync('/dev/null', 'r');
  await rejectsWith(new Command('/nonexistent/spawnpool').passFd(fd, { closeParent: true }).run(opts()), 'ENOENT');
  assert.throws(() => fstatSync(fd), /EBADF/);
});

test('an inheriting child gets process.env as it is at run(): set, changed and deleted just before', async () => {
  const h = helper();
  const saved = { ...process.env };
  try {
    process.env.SPAWNPOOL_T_GONE = 'soon gone';
    await new Command('/bin/true').run(opts());
    process.env.SPAWNPOOL_T_NEW = 'ünïcode = välue';
    process.env.HOME = '/changed-home';
    delete process.env.SPAWNPOOL_T_GONE;
    await new Command(h.path).run(opts());
    const log = h.log();
    assert.is(log, expectedLog());
    assert.ok(log.includes('ENV:SPAWNPOOL_T_NEW=ünïcode = välue\n') && log.includes('ENV:HOME=/changed-home\n'));
    assert.not.ok(log.includes('SPAWNPOOL_T_GONE'));
  } finally {
    for (const k of Object.keys(process.env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('run() from a user\'s worker thread: the child inherits that thread\'s own process.env', async () => {
  const entry = new URL('../dist/index.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.entry).then(async ({ Command, SpawnPool }) => {
      process.env.SPAWNPOOL_T_IN_WORKER = 'only here';
      const pool = new SpawnPool({ threads: 1, engine: workerData.engine });
      const r = await new Command('/usr/bin/env').captureOutput().run({ pool });
      await pool.close();
      parentPort.postMessage(r.stdout);
    });`;
  const worker = new Worker(code, { eval: true, workerData: { entry, engine: ENGINE } });
  const [out] = await once(worker, 'message');
  assert.ok(out.split('\n').includes('SPAWNPOOL_T_IN_WORKER=only here'), out);
  assert.is(process.env.SPAWNPOOL_T_IN_WORKER, undefined);
  await once(worker, 'exit');
});

test('envPassCommon passes LC_ALL=C and the usual variables only', async () => {
  const h = helper();
  const saved = { ...process.env };
  try {
    Object.assign(process.env, { HOME: '/home/test', USER: 'test', LOGNAME: 'test', TMPDIR: '/tmp', OTHER: 'nope' });
    delete process.env.LD_PRELOAD;
    delete process.env.LD_LIBRARY_PATH;
    await new Command(h.path).envPassCommon().run(opts());
    const env = ['LC_ALL=C', `PATH=${process.env.PATH}`, 'HOME=/home/test', 'USER=test', 'LOGNAME=test', 'TMPDIR=/tmp'];
    assert.is(h.log(), expectedLog({ env }));
  } finally {
    for (const k of Object.keys(process.env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('envPass passes a set variable and skips an unset one', async () => {
  const h = helper();
  process.env.DISPLAY = ':0';
  delete process.env.DOESNOTEXIST;
  try {
    await new Command(h.path).envPass('DISPLAY').envPass('DOESNOTEXIST').run(opts());
    assert.is(h.log(), expectedLog({ env: ['DISPLAY=:0'] }));
  } finally {
    delete process.env.DISPLAY;
  }
});

test('envPair, envString, envXDG and replacement', async () => {
  const h = helper();
  await new Command(h.path).envPair('TERM', 'xterm').envString('USER=test').envString('TERM=vt100')
    .envPair('EMPTY', '').envXDG('/base').run(opts());
  const env = ['TERM=vt100', 'USER=test', 'EMPTY=', 'XDG_DATA_HOME=/base/.local/share', 'XDG_CACHE_HOME=/base/.cache', 'XDG_CONFIG_HOME=/base/.config'];
  assert.is(h.log(), expectedLog({ env }));
});

test('envClear gives an empty environment', async () => {
  const h = helper();
  await new Command(h.path).envClear().run(opts());
  assert.is(h.log(), expectedLog({ env: [] }));
});

test('arguments reach the child exactly, empty and odd ones included', async () => {
  const h = helper();
  const args = ['--strict-order', '', ' spaced ', "it's", '$HOME', '*', 'ünï', 'a=b', '--conf-file=/etc/dnsmasq.conf', '42', '7'];
  await new Command(h.path, '--strict-order', '').args(' spaced ', "it's").args(['$HOME', '*', 'ünï'])
    .argPair('a', 'b').argPair('--conf-file', '/etc/dnsmasq.conf').arg(42).argFormat('%d', 7).run(opts());
  assert.is(h.log(), expectedLog({ args }));
});

test('Command.fromArgv runs argv[0] with the rest as arguments', async () => {
  const h = helper();
  await Command.fromArgv([h.path, '--domain', 'localdomain']).run(opts());
  assert.is(h.log(), expectedLog({ args: ['--domain', 'localdomain'] }));
});

test('inputBuffer feeds stdin (stdout still /dev/null)', async () => {
  const h = helper();
  const r = await new Command(h.path).inputBuffer('Hello World\n').run(opts());
  assert.is(r.stdout, undefined);
  assert.is(h.log(), expectedLog({ fds: [[0, 'pipe'], [1, '/dev/null'], [2, 'pipe']] }));
});

test('captureOutput and captureError get exactly the bytes written', async () => {
  const h = helper();
  const r = await new Command(h.path).inputBuffer('Hello World\n').captureOutput().captureError().run(opts());
  assert.is(r.stdout, echoed('Hello World\n'));
  assert.is(r.stderr, echoed('Hello World\n', 'STDERR'));
  assert.is(r.output, undefined);
  assert.is(h.log(), expectedLog({ fds: [[0, 'pipe'], [1, 'pipe'], [2, 'pipe']] }));
});

test('captureCombined interleaves stdout and stderr in write order through one fd', async () => {
  const h = helper();
  const r = await new Command(h.path).inputBuffer('Hello\n').captureCombined().run(opts());
  assert.is(r.output, echoed('Hello\n') + echoed('Hello\n', 'STDERR'));
  assert.is(r.stdout, undefined);
  assert.is(r.stderr, undefined);
  const log = h.log();
  // Both point at the same object: the helper sees the same kind on 1 and 2.
  const kind = /FD:1 (\S+)/.exec(log)[1];
  assert.ok(kind === 'pipe' || kind === 'socket');
  assert.ok(log.includes(`FD:2 ${kind}\n`));
});

test("encoding 'buffer' gives bytes; no output gives an empty value", async () => {
  const h = helper();
  const bytes = Buffer.from([0, 1, 2, 255, 10]);
  const r = await new Command(h.path).inputBuffer(bytes).captureOutput({ encoding: 'buffer' }).captureError({ encoding: 'latin1' }).run(opts());
  assert.ok(r.stdout instanceof Uint8Array);
  assert.equal(Buffer.from(r.stdout), Buffer.concat([Buffer.from('BEGIN STDOUT\n'), bytes, Buffer.from('END STDOUT\n')]));
  assert.is(r.stderr, `BEGIN STDERR\n${bytes.toString('latin1')}END STDERR\n`);
  h.log();
  const empty = await new Command('/bin/true').captureOutput().captureError({ encoding: 'buffer' }).run(opts());
  assert.is(empty.stdout, '');
  assert.equal(empty.stderr, new Uint8Array(0));
});

test('cwd sets the working directory', async () => {
  const h = helper();
  const dir = realpathSync(mkdtempSync(join(tmpBase, 'cwd-')));
  await new Command(h.path).cwd(dir).run(opts());
  assert.is(h.log(), expectedLog({ cwd: dir }));
});

test('inputFd, outputFd and errorFd wire parent fds to 0, 1, 2', async () => {
  const h = helper();
  const inPath = join(tmpBase, 'in.txt');
  const outPath = join(tmpBase, 'out.txt');
  const errPath = join(tmpBase, 'err.txt');
  writeFileSync(inPath, 'from a file\n');
  const inFd = openSync(inPath, 'r');
  const outFd = openSync(outPath, 'w');
  const errFd = openSync(errPath, 'w');
  try {
    await new Command(h.path).inputFd(inFd).outputFd(outFd).errorFd(errFd).run(opts());
  } finally {
    closeSync(inFd); closeSync(outFd); closeSync(errFd);
  }
  assert.is(readFileSync(outPath, 'utf8'), echoed('from a file\n'));
  assert.is(readFileSync(errPath, 'utf8'), echoed('from a file\n', 'STDERR'));
  assert.is(h.log(), expectedLog({ fds: [[0, inPath], [1, outPath], [2, errPath]] }));
});

test('stdin, stdout and stderr each larger than a pipe buffer do not deadlock', async () => {
  const h = helper();
  const input = Buffer.alloc(3 * 1024 * 1024 + 17, 'abcdefghij');
  const r = await new Command(h.path).inputBuffer(input).captureOutput({ encoding: 'buffer' }).captureError({ encoding: 'buffer' }).run(opts());
  const expected = Buffer.concat([Buffer.from('BEGIN STDOUT\n'), input, Buffer.from('END STDOUT\n')]);
  assert.ok(Buffer.from(r.stdout).equals(expected));
  assert.is(r.stderr.byteLength, input.length + 'BEGIN STDERR\nEND STDERR\n'.length);
  h.log();
});

test('a child that closes stdin early is not an error', async () => {
  const h = helper();
  const r = await new Command(h.path, '--close-stdin').inputBuffer(Buffer.alloc(4 * 1024 * 1024)).captureOutput().run(opts());
  assert.is(r.status, 0);
  assert.is(r.stdout, echoed(''));
  h.log();
});

test('an uncaptured stdout goes to /dev/null: gigabytes cost nothing', async () => {
  const h = helper();
  const r = await new Command(h.path, '--no-log', '--spam-stdout', String(2 * 1024 ** 3)).run(opts());
  assert.is(r.status, 0);
  assert.is(r.stdout, undefined);
});

test('the inheriting child gets the main thread\'s env as it is at run(), not the worker\'s copy', async () => {
  const p = pool();
  await new Command('/bin/true').run({ pool: p }); // workers exist now, with their env copies
  const h = helper();
  process.env.SPAWNPOOL_LATE = 'late value';
  const savedHome = process.env.HOME;
  delete process.env.HOME;
  try {
    await new Command(h.path).run({ pool: p });
    const log = h.log();
    assert.is(log, expectedLog({ env: inheritedEnv() }));
    assert.ok(log.includes('ENV:SPAWNPOOL_LATE=late value\n'));
    assert.not.ok(/^ENV:HOME=/m.test(log));
  } finally {
    delete process.env.SPAWNPOOL_LATE;
    if (savedHome !== undefined) process.env.HOME = savedHome;
  }
});

test('a bare name resolves on the parent PATH, even when the child env has no PATH', async () => {
  const h = helper('bare');
  const saved = process.env.PATH;
  process.env.PATH = `/nonexistent:${h.dir}:${saved}`;
  try {
    await new Command(h.name).envClear().envPair('X', '1').run(opts());
  } finally {
    process.env.PATH = saved;
  }
  assert.is(h.log(), expectedLog({ env: ['X=1'] }));
});

test.run();
