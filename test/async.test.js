// runAsync(): pid once spawned, wait(), abort() with grace, asyncDispose,
// timeouts and AbortSignals; every child reaped.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command } from '../dist/index.js';
import { pool, helper, echoed, processState, exeOf, rejectsWith, HELPER } from './_support.js';

const opts = (more = {}) => ({ pool: pool(), ...more });

/** Resolves once the shell has set its trap: SIGTERM (bit 15) shows in SigIgn. */
async function ignoresSigterm(pid) {
  for (;;) {
    const line = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (line && (BigInt(`0x${line[1]}`) & (1n << 14n)) !== 0n) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('runAsync resolves once spawned, with the pid of the running child', async () => {
  const h = helper();
  const running = await new Command(h.path, '--no-log', '--sleep', '200').runAsync(opts());
  assert.ok(running.pid > 0);
  assert.is(processState(running.pid), 'alive');
  assert.is(exeOf(running.pid), HELPER);
  const r = await running.wait();
  assert.is(r.pid, running.pid);
  assert.is(r.status, 0);
  assert.is(processState(running.pid), 'gone');
});

test('buffers work with runAsync: wait() returns them', async () => {
  const h = helper();
  const running = await new Command(h.path, '--no-log').inputBuffer('async input\n').captureOutput().runAsync(opts());
  const r = await running.wait();
  assert.is(r.stdout, echoed('async input\n'));
  // wait() can be called again and gives the same answer.
  assert.is((await running.wait()).stdout, r.stdout);
});

test('wait() applies the status rules; its own status option wins', async () => {
  const h = helper();
  const running = await new Command(h.path, '--no-log', '--exit', '4').runAsync(opts());
  await rejectsWith(running.wait(), 'EEXIT');
  assert.is((await running.wait({ status: true })).status, 4);
  const withStatus = await new Command(h.path, '--no-log', '--exit', '5').runAsync(opts({ status: true }));
  assert.is((await withStatus.wait()).status, 5);
});

test('runAsync rejects like run() when the child cannot start', async () => {
  await rejectsWith(new Command('/nonexistent/x').runAsync(opts()), 'ENOENT');
});

test('abort() sends SIGTERM, the child is reaped before it resolves, wait() rejects EABORTED', async () => {
  const running = await new Command('/bin/sleep', 'infinity').runAsync(opts());
  await running.abort();
  assert.is(processState(running.pid), 'gone');
  const err = await rejectsWith(running.wait(), 'EABORTED');
  assert.is(err.signal, 'SIGTERM');
  assert.is(err.pid, running.pid);
  // Aborting again, after the end, is a no-op.
  await running.abort();
});

test('abort() escalates to SIGKILL after killGraceMs when the signal is ignored', async () => {
  const running = await new Command('/bin/sh', '-c', 'trap "" TERM; echo ready; exec sleep 30')
    .captureOutput().runAsync(opts({ killGraceMs: 50 }));
  await ignoresSigterm(running.pid);
  await running.abort();
  assert.is(processState(running.pid), 'gone');
  const err = await rejectsWith(running.wait(), 'EABORTED');
  assert.is(err.signal, 'SIGKILL');
  assert.is(err.stdout, 'ready\n');
});

test('abort(signal) sends that signal', async () => {
  const running = await new Command('/bin/sleep', 'infinity').runAsync(opts());
  await running.abort('SIGINT');
  const err = await rejectsWith(running.wait(), 'EABORTED');
  assert.is(err.signal, 'SIGINT');
  await rejectsWith(running.abort('SIGBOGUS'), 'EINVAL');
});

// What `await using running = ...` does at scope exit (Node 20 cannot parse it).
test('Symbol.asyncDispose aborts and reaps a child still running', async () => {
  const running = await new Command('/bin/sleep', 'infinity').runAsync(opts());
  assert.is(processState(running.pid), 'alive');
  await running[Symbol.asyncDispose]();
  assert.is(processState(running.pid), 'gone');
  await rejectsWith(running.wait(), 'EABORTED');
  // Disposing of a finished run is a no-op.
  const done = await new Command('/bin/true').runAsync(opts());
  await done.wait();
  await done[Symbol.asyncDispose]();
  assert.is((await done.wait()).status, 0);
});

test('timeoutMs ends the child: ETIMEDOUT, reaped', async () => {
  const err = await rejectsWith(new Command('/bin/sleep', 'infinity').run(opts({ timeoutMs: 50 })), 'ETIMEDOUT');
  assert.ok(err.pid > 0);
  assert.is(err.signal, 'SIGTERM');
  assert.is(processState(err.pid), 'gone');
});

test('an AbortSignal ends run() and runAsync(): EABORTED', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const err = await rejectsWith(new Command('/bin/sleep', 'infinity').run(opts({ signal: ac.signal })), 'EABORTED');
  assert.is(processState(err.pid), 'gone');
  await rejectsWith(new Command('/bin/sleep', 'infinity').run(opts({ signal: ac.signal })), 'EABORTED');
  const ac2 = new AbortController();
  const running = await new Command('/bin/sleep', 'infinity').runAsync(opts({ signal: ac2.signal }));
  ac2.abort();
  await rejectsWith(running.wait(), 'EABORTED');
  // A signal that never fires does not hold the run.
  const r = await new Command('/bin/true').run(opts({ signal: new AbortController().signal }));
  assert.is(r.status, 0);
});

test.run();
