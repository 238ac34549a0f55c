// sendBuffer(): the child reads the bytes through a pipe at the fd number the
// builder returned, written by the worker beside stdin and the captures; and
// nonblockingFds(): the worker's ends are non-blocking, the child's are not.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from '../dist/index.js';
import { ENGINE, pool, helper, expectedLog, echoed, processState, rejectsWith, throwsWith, tmpBase } from './_support.js';

const native = ENGINE === 'native';
const opts = () => ({ pool: pool() });
const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));
const framed = (name, ...parts) => Buffer.concat([Buffer.from(`BEGIN ${name}\n`), ...parts, Buffer.from(`END ${name}\n`)]);

test('builder: numbers from 3 up, skipping passed fds; a passFd() on a send buffer\'s number is EINVAL', () => {
  const c = new Command('/bin/true');
  assert.is(c.sendBuffer('a'), 3);
  assert.is(c.sendBuffer(new Uint8Array([0, 1, 2])), 4);
  const d = new Command('/bin/true').passFd(3).passFd(5);
  assert.is(d.sendBuffer(''), 4);
  assert.is(d.sendBuffer('x'), 6);
  assert.match(throwsWith(() => c.passFd(4), 'EINVAL').message, /passFd\(\): the child's fd 4 is already a sendBuffer\(\) pipe/);
  assert.match(throwsWith(() => c.sendBuffer(42), 'EINVAL').message, /sendBuffer\(\)/);
  assert.match(throwsWith(() => c.sendBuffer(null), 'EINVAL').message, /sendBuffer\(\)/);
  assert.is(c.nonblockingFds(), c);
});

test('the child reads each buffer at its number, NUL bytes and all; fds exactly as asked', async () => {
  const h = helper();
  const cmd = new Command(h.path).inputBuffer('stdin\n').captureOutput({ encoding: 'buffer' });
  const one = Buffer.from('first\0buffer\n');
  const two = Buffer.from('second\n');
  cmd.args('--readfd', cmd.sendBuffer(one), '--readfd', cmd.sendBuffer(two));
  const r = await cmd.run(opts());
  assert.ok(Buffer.from(r.stdout).equals(framed('STDOUT', Buffer.from('stdin\n'), one, two)));
  // Each is a pipe only the child reads; nothing else reaches it.
  assert.is(h.log(), expectedLog({
    args: ['--readfd', '3', '--readfd', '4'],
    fds: [[0, 'pipe'], [1, 'pipe'], [2, 'pipe'], [3, 'pipe'], [4, 'pipe']],
  }));
});

test('a send buffer beside a passed fd, and an empty one: EOF at once', async () => {
  const h = helper();
  const path = join(tmpBase, `passed-${process.pid}`);
  const fd = openSync(path, 'w');
  try {
    const cmd = new Command(h.path).passFd(fd).captureOutput();
    const at = cmd.sendBuffer('');
    const at2 = cmd.sendBuffer('after the empty one\n');
    cmd.args('--readfd', at, '--readfd', at2);
    const r = await cmd.run(opts());
    assert.is(r.stdout, echoed('after the empty one\n'));
    const fds = [[0, '/dev/null'], [1, 'pipe'], [2, 'pipe'], [fd, path], [at, 'pipe'], [at2, 'pipe']].sort((a, b) => a[0] - b[0]);
    assert.is(h.log(), expectedLog({ args: ['--readfd', String(at), '--readfd', String(at2)], fds }));
  } finally {
    closeSync(fd);
  }
});

test('stdin, two send buffers, stdout and stderr, each over 128 KiB, pumped together: no deadlock', async () => {
  const h = helper();
  const size = 300 * 1024;
  const [input, one, two] = [randomBytes(size), randomBytes(size), randomBytes(size)];
  // The child writes 300 KiB on each output before it reads anything, then
  // echoes what it read: a parent that fed first, or read one stream at a
  // time, would wait forever.
  const cmd = new Command(h.path, '--no-log', '--spam-first', '--spam-stdout', size, '--spam-stderr', size)
    .inputBuffer(input).captureOutput({ encoding: 'buffer' }).captureError({ encoding: 'buffer' });
  cmd.args('--readfd', cmd.sendBuffer(one), '--readfd', cmd.sendBuffer(two));
  const r = await cmd.run(opts());
  const spam = Buffer.alloc(size, 'x');
  assert.ok(Buffer.from(r.stdout).equals(Buffer.concat([spam, framed('STDOUT', input, one, two)])));
  assert.ok(Buffer.from(r.stderr).equals(Buffer.concat([spam, framed('STDERR', input, one, two)])));
});

test('a child that never reads its send buffer: the run still ends normally', async () => {
  const cmd = new Command('/bin/true');
  cmd.sendBuffer(randomBytes(1024 * 1024));
  assert.is((await cmd.run(opts())).status, 0);
});

test('with runAsync() and outputPipe(): the buffer reaches the child while the caller streams', async () => {
  const h = helper();
  const cmd = new Command(h.path, '--no-log').inputPipe().outputPipe();
  const data = randomBytes(200 * 1024);
  cmd.args('--readfd', cmd.sendBuffer(data));
  const running = await cmd.runAsync(opts());
  const chunks = [];
  running.stdout.on('data', (c) => chunks.push(c));
  running.stdin.end('in\n');
  assert.is((await running.wait()).status, 0);
  assert.ok(Buffer.concat(chunks).equals(framed('STDOUT', Buffer.from('in\n'), data)));
});

/** The fd of this process whose open file is `link` (pipe:[N]), or undefined. */
function ourEnd(link) {
  return readdirSync('/proc/self/fd').map(Number).find((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === link;
    } catch {
      return false;
    }
  });
}

const O_NONBLOCK = 0o4000;
const flagsOf = (where) => parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(where, 'utf8'))[1], 8);

test('nonblockingFds(): the worker\'s ends of the pipes are non-blocking, the child\'s stay blocking', async () => {
  const h = helper();
  const cmd = new Command(h.path).nonblockingFds().inputPipe().outputPipe().errorPipe();
  cmd.args('--readfd', cmd.sendBuffer('sent\n'));
  const running = await cmd.runAsync(opts());
  const drained = Promise.all([running.stdout.toArray(), running.stderr.toArray()]);
  for (const fd of [0, 1, 2, 3]) {
    // The child blocks reading stdin until we end it: its table is stable.
    assert.is(flagsOf(`/proc/${running.pid}/fdinfo/${fd}`) & O_NONBLOCK, 0, `child fd ${fd}`);
    // child_process gives socket pairs, whose two ends are different inodes;
    // a send buffer's end closes once written.
    if (native && fd < 3) {
      const ours = ourEnd(readlinkSync(`/proc/${running.pid}/fd/${fd}`));
      assert.ok(ours !== undefined, `the worker holds the other end of child fd ${fd}`);
      assert.is.not(flagsOf(`/proc/self/fdinfo/${ours}`) & O_NONBLOCK, 0, `worker's end of child fd ${fd}`);
    }
  }
  running.stdin.end();
  const [out] = await drained;
  assert.is(Buffer.concat(out).toString(), echoed('sent\n'));
  assert.is((await running.wait()).status, 0);
  const kind = native ? 'pipe' : 'socket';
  assert.match(h.log(), new RegExp(`FD:0 ${kind}\nFD:1 ${kind}\nFD:2 ${kind}\nFD:3 ${kind}\n`));
});

if (native) {
  test('a daemon reads a send buffer larger than a pipe: run() resolves once it is all written', async () => {
    const h = helper('daemon-send');
    const outPath = join(tmpBase, `daemon-send-${process.pid}`);
    const out = openSync(outPath, 'w');
    const data = randomBytes(256 * 1024);
    const cmd = new Command(h.path, '--no-log').daemonize().outputFd(out);
    cmd.args('--readfd', cmd.sendBuffer(data));
    let r;
    try {
      r = await cmd.run(opts());
    } finally {
      closeSync(out);
    }
    assert.is(r.status, 0);
    // It echoes at EOF on its inputs, and exits.
    while (processState(r.daemonPid) === 'alive') await tick();
    assert.ok(readFileSync(outPath).equals(framed('STDOUT', data)));
  });
}

if (native) {
  test('a daemon that never reads a send buffer larger than a pipe: timeoutMs ends the run (ETIMEDOUT), the daemon lives on', async () => {
    const pidfile = join(tmpBase, `daemon-unread-${process.pid}.pid`);
    const cmd = new Command('/bin/sleep', 'infinity').daemonize().pidFile(pidfile);
    cmd.sendBuffer(randomBytes(1024 * 1024));
    const err = await rejectsWith(cmd.run({ ...opts(), timeoutMs: 1000 }), 'ETIMEDOUT');
    assert.match(err.message, /timed out after 1000 ms/);
    const daemonPid = Number(readFileSync(pidfile, 'utf8'));
    assert.is(processState(daemonPid), 'alive');
    process.kill(daemonPid, 'SIGKILL');
  });
}

test.run();
