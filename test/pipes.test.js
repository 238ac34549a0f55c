// inputPipe / outputPipe / errorPipe: Node streams on the main thread, fed
// over the run's port with credit-based flow control; lines().
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, withDryRun } from '../dist/index.js';
import { pool, helper, echoed, processState, rejectsWith } from './_support.js';

const opts = (more = {}) => ({ pool: pool(), ...more });

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test('outputPipe gives the child stdout as a Readable; wait() resolves after it', async () => {
  const h = helper();
  const running = await new Command(h.path, '--no-log').inputBuffer('piped out\n').outputPipe().runAsync(opts());
  assert.is(running.stdin, undefined);
  assert.is(running.stderr, undefined);
  const [out, result] = await Promise.all([readAll(running.stdout), running.wait()]);
  assert.is(out.toString(), echoed('piped out\n'));
  assert.is(result.status, 0);
  assert.is(result.stdout, undefined);
});

test('a piped run that cannot start rejects, and its streams, never handed out, end without an error event that would end the process', async () => {
  for (let i = 0; i < 20; i++) {
    await rejectsWith(new Command('/nonexistent/spawnpool-test').inputPipe().outputPipe().errorPipe().runAsync(opts()), 'ENOENT');
  }
  // Errors of the streams land a turn or two after the rejection.
  await new Promise((r) => setTimeout(r, 50));
  const running = await new Command('/bin/echo', 'still here').outputPipe().runAsync(opts());
  const [out] = await Promise.all([readAll(running.stdout), running.wait()]);
  assert.is(out.toString(), 'still here\n');
});

test('inputPipe, outputPipe and errorPipe together, each far larger than a pipe buffer', async () => {
  const h = helper();
  const data = randomBytes(5 * 1024 * 1024);
  const running = await new Command(h.path, '--no-log').inputPipe().outputPipe().errorPipe().runAsync(opts());
  const out = readAll(running.stdout);
  const err = readAll(running.stderr);
  // Written in uneven pieces, the way a producer would.
  for (let at = 0; at < data.length; at += 100_003) {
    if (!running.stdin.write(data.subarray(at, at + 100_003))) await new Promise((r) => running.stdin.once('drain', r));
  }
  running.stdin.end();
  const expect = (name) => Buffer.concat([Buffer.from(`BEGIN ${name}\n`), data, Buffer.from(`END ${name}\n`)]);
  assert.ok((await out).equals(expect('STDOUT')));
  assert.ok((await err).equals(expect('STDERR')));
  assert.is((await running.wait()).status, 0);
});

test('lines() yields each line of a piped stdout, without its newline', async () => {
  const running = await new Command('/usr/bin/seq', '100000').outputPipe().runAsync(opts());
  let n = 0;
  let last;
  for await (const line of running.lines()) {
    n++;
    last = line;
    if (n === 1) assert.is(line, '1');
  }
  assert.is(n, 100000);
  assert.is(last, '100000');
  assert.is((await running.wait()).status, 0);
  await rejectsWith(running.lines('stderr').next(), 'EINVAL');
});

/** The bytes a process has written so far, from /proc. */
const written = (pid) => Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))[1]);

test('a reader that stalls stalls the child: 400 MiB through, memory stays bounded', async () => {
  const total = 400 * 1024 * 1024;
  const h = helper();
  const rss0 = process.memoryUsage.rss();
  const running = await new Command(h.path, '--no-log', '--spam-stdout', String(total)).outputPipe().runAsync(opts());
  // Nobody reads: the child must come to a stop, blocked on a full pipe.
  let before = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = written(running.pid);
    if (now === before) break;
    before = now;
  }
  assert.ok(before < 16 * 1024 * 1024, `the child wrote ${before} bytes with no reader`);
  assert.is(processState(running.pid), 'alive');
  let peak = process.memoryUsage.rss();
  // Now read it all.
  let got = 0;
  for await (const chunk of running.stdout) {
    got += chunk.length;
    if ((got & 0xffffff) < chunk.length) peak = Math.max(peak, process.memoryUsage.rss());
  }
  assert.is((await running.wait()).status, 0);
  assert.is(got, total + echoed('').length);
  assert.ok(peak - rss0 < 150 * 1024 * 1024, `RSS grew by ${((peak - rss0) / 2 ** 20).toFixed(0)} MiB`);
});

test('a child that closes stdin early: the Writable closes quietly, no error', async () => {
  const h = helper();
  const running = await new Command(h.path, '--no-log', '--close-stdin').inputPipe().runAsync(opts());
  const closed = new Promise((r) => running.stdin.once('close', r));
  let errors = 0;
  running.stdin.on('error', () => errors++);
  const chunk = Buffer.alloc(256 * 1024, 1);
  for (let i = 0; i < 64 && !running.stdin.destroyed; i++) running.stdin.write(chunk);
  await closed;
  assert.is((await running.wait()).status, 0);
  assert.is(errors, 0);
});

test('abort ends the pipes and the run: EABORTED, reaped', async () => {
  const running = await new Command('/bin/cat').inputPipe().outputPipe().runAsync(opts());
  running.stdin.write('before abort\n');
  const first = await new Promise((r) => running.stdout.once('data', r));
  assert.is(first.toString(), 'before abort\n');
  await running.abort();
  await rejectsWith(running.wait(), 'EABORTED');
  assert.is(processState(running.pid), 'gone');
  // The stream ended one way or the other; it does not hang.
  await new Promise((r) => (running.stdout.destroyed || running.stdout.readableEnded ? r() : running.stdout.once('close', r)));
});

test('pipes need runAsync: run() rejects EINVAL; a pipe and a buffer on one stream is EINVAL', async () => {
  const err = await rejectsWith(new Command('/bin/true').outputPipe().errorPipe().run(opts()), 'EINVAL');
  assert.match(err.message, /outputPipe\(\), errorPipe\(\) need runAsync\(\)/);
  assert.throws(() => new Command('/bin/true').inputBuffer('x').inputPipe(), /stdin is already wired as buffer/);
  assert.throws(() => new Command('/bin/true').captureOutput().outputPipe(), /stdout is already wired as capture/);
});

test('under a dry run, pipes carry the handler output', async () => {
  const { value } = await withDryRun(() => ({ stdout: 'dry\n', stderr: 'err\n' }), async () => {
    const running = await new Command('/bin/cat').inputPipe().outputPipe().errorPipe().runAsync();
    running.stdin.end('ignored');
    return [String(await readAll(running.stdout)), String(await readAll(running.stderr)), (await running.wait()).status];
  });
  assert.equal(value, ['dry\n', 'err\n', 0]);
});

test.run();
