// Runs submitted in one turn of the main loop travel to a worker as one
// message, and the addon carries out the runs that need no JS stream by
// itself (the fast path). These tests mix both paths on one worker, coalesce
// 20 000 runs from one tick, end runs while their batch is in flight, and
// destroy a pool with a batch in flight.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { Command, SpawnPool } from '../dist/index.js';
import { realpathSync } from 'node:fs';
import { ENGINE, HELPER, childrenOf, codeOf, echoed, exeOf, openFds, untilNoChildren, warmUp } from './_support.js';

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test('one worker, one tick: captured runs and piped runs side by side, each with its own bytes', async () => {
  const pool = new SpawnPool({ threads: 1, engine: ENGINE });
  try {
    const inputs = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i * 3000));
    // All submitted before any await: they cross in one message.
    const captured = inputs.map((data) => new Command(HELPER, '--no-log').inputBuffer(data).captureOutput({ encoding: 'buffer' })
      .captureError().run({ pool }));
    const piped = inputs.map((data) => new Command(HELPER, '--no-log').inputPipe().outputPipe().runAsync({ pool }));
    const combined = inputs.map((_, i) => new Command(HELPER, '--no-log', '--stderr', `err ${i}\n`).captureCombined()
      .run({ pool }));
    const results = await Promise.all(captured);
    results.forEach((r, i) => {
      assert.ok(Buffer.from(r.stdout).equals(Buffer.from(echoed(inputs[i].toString('latin1')), 'latin1')), `captured run ${i}`);
    });
    const handles = await Promise.all(piped);
    const outs = await Promise.all(handles.map(async (h, i) => {
      h.stdin.end(inputs[i]);
      const [out] = await Promise.all([readAll(h.stdout), h.wait()]);
      return out;
    }));
    outs.forEach((out, i) => {
      assert.ok(out.equals(Buffer.from(echoed(inputs[i].toString('latin1')), 'latin1')), `piped run ${i}`);
    });
    (await Promise.all(combined)).forEach((r, i) => assert.match(r.output, `err ${i}\n`));
  } finally {
    await pool.destroy();
  }
});

test('20 000 runs submitted in one tick all run, each once; the environment follows process.env', async () => {
  const pool = new SpawnPool({ threads: 2, engine: ENGINE });
  try {
    const fdsBefore = await warmUp(() => new Command('/bin/true').run({ pool }), { pool, threads: 2 });
    // The warm-up's aborted sleepers count as failed; none of the 20 000 may.
    const failedBefore = pool.stats().failed;
    const runs = Array.from({ length: 20_000 }, () => new Command('/bin/true').run({ pool }));
    assert.ok(pool.stats().queued > 0, 'runs beyond the threads\' capacity wait on the main thread');
    const results = await Promise.all(runs);
    assert.is(results.filter((r) => r.status === 0).length, 20_000);
    assert.is(results.filter((r) => r.pid > 0).length, 20_000, 'every run had a child');
    const s = pool.stats();
    assert.equal({ running: s.running, queued: s.queued, failed: s.failed - failedBefore }, { running: 0, queued: 0, failed: 0 });
    await untilNoChildren();
    assert.ok(openFds().length <= fdsBefore, `fds: ${fdsBefore} before, ${openFds().length} after`);

    // A worker keeps the inherited environment between runs: a change must still reach the next child.
    const env = () => new Command('/usr/bin/env').captureOutput().run({ pool }).then((r) => r.stdout);
    const name = `SPAWNPOOL_BATCH_${process.pid}`;
    assert.not.match(await env(), name);
    process.env[name] = 'one';
    const [a, b] = await Promise.all([env(), env()]);
    assert.match(a, `${name}=one\n`);
    assert.match(b, `${name}=one\n`);
    process.env[name] = 'two';
    assert.match(await env(), `${name}=two\n`);
    delete process.env[name];
    assert.not.match(await env(), name);
  } finally {
    await pool.destroy();
  }
});

test('timeouts and aborts that land while their batch is on its way end exactly their runs', async () => {
  const pool = new SpawnPool({ threads: 2, engine: ENGINE });
  try {
    const early = new AbortController();
    const runs = [];
    for (let i = 0; i < 60; i++) {
      const kind = ['timeout', 'ok', 'abort', 'signal', 'zero-timeout'][i % 5];
      if (kind === 'timeout') runs.push([kind, new Command('/bin/sleep', 'infinity').run({ pool, timeoutMs: 30 })]);
      if (kind === 'zero-timeout') runs.push([kind, new Command('/bin/sleep', 'infinity').captureOutput().run({ pool, timeoutMs: 0 })]);
      if (kind === 'ok') runs.push([kind, new Command(HELPER, '--no-log').inputBuffer('x').captureOutput().run({ pool })]);
      if (kind === 'abort') runs.push([kind, new Command('/bin/sleep', 'infinity').run({ pool, signal: early.signal })]);
      if (kind === 'signal') {
        runs.push([kind, new Command('/bin/sleep', 'infinity').runAsync({ pool }).then((h) => h.abort().then(() => h.wait()))]);
      }
    }
    // Aborted before the batch has even left this thread.
    early.abort();
    const codes = await Promise.all(runs.map(([, p]) => codeOf(p)));
    const expected = { timeout: 'ETIMEDOUT', 'zero-timeout': 'ETIMEDOUT', ok: 'ok', abort: 'EABORTED', signal: 'EABORTED' };
    assert.equal(codes, runs.map(([kind]) => expected[kind]));
    await untilNoChildren();
  } finally {
    await pool.destroy();
  }
});

test("run()'s AbortSignal reaches its run on the lane: queued ones end unstarted, running ones get their killSignal", async () => {
  const pool = new SpawnPool({ threads: 1, engine: ENGINE });
  try {
    await warmUp(() => new Command('/bin/true').run({ pool }));
    const warnings = [];
    const onWarning = (w) => warnings.push(w.name);
    process.on('warning', onWarning);
    const ac = new AbortController();
    const err = (p) => p.then(() => assert.unreachable('resolved'), (e) => e);
    // A worker carries 256 at once: these fill it, the last ones wait in the pool.
    const term = Array.from({ length: 250 }, () => err(new Command('/bin/sleep', 'infinity').run({ pool, signal: ac.signal })));
    const int = Array.from({ length: 6 }, () => err(new Command('/bin/sleep', 'infinity').run({ pool, signal: ac.signal, killSignal: 'SIGINT' })));
    const queued = Array.from({ length: 5 }, () => err(new Command('/bin/sleep', 'infinity').run({ pool, signal: ac.signal })));
    const other = new Command('/bin/sleep', '0.2').run({ pool });
    while (pool.stats().running < 256) await new Promise((r) => setTimeout(r, 5));
    assert.is(pool.stats().queued, 6);
    ac.abort();
    for (const e of await Promise.all(term)) assert.equal([e.code, e.signal], ['EABORTED', 'SIGTERM']);
    for (const e of await Promise.all(int)) assert.equal([e.code, e.signal], ['EABORTED', 'SIGINT']);
    for (const e of await Promise.all(queued)) {
      assert.is(e.code, 'EABORTED');
      assert.is(e.pid, undefined);
      assert.match(e.message, 'aborted before it was spawned');
    }
    // A run without that signal is not touched.
    assert.is((await other).status, 0);
    assert.is(pool.stats().outcomes.abort, 261);
    // 261 runs on one signal: one listener on it, no leak warning.
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    assert.not.ok(warnings.includes('MaxListenersExceededWarning'), warnings.join(', '));
    await untilNoChildren();
  } finally {
    await pool.destroy();
  }
});

test('runAsync() without pipes gets its pid and its aborts on the lane: each handle reaches its own child', async () => {
  const pool = new SpawnPool({ threads: 2, engine: ENGINE });
  try {
    const handles = await Promise.all(Array.from({ length: 40 }, () => new Command('/bin/sleep', 'infinity').runAsync({ pool })));
    const pids = handles.map((h) => h.pid);
    assert.is(new Set(pids).size, 40, 'distinct pids');
    const mine = new Set(childrenOf());
    for (const pid of pids) {
      assert.ok(mine.has(pid), `${pid} is a child of this process`);
      assert.is(exeOf(pid), realpathSync('/bin/sleep'));
    }
    // Each handle ends its own child, with its own signal.
    const signals = handles.map((_, i) => (i % 2 === 0 ? 'SIGINT' : 'SIGUSR1'));
    await Promise.all(handles.map((h, i) => h.abort(signals[i])));
    for (const [i, h] of handles.entries()) {
      const e = await h.wait().then(() => assert.unreachable('resolved'), (err) => err);
      assert.equal([e.code, e.signal, e.pid], ['EABORTED', signals[i], pids[i]]);
    }
    await untilNoChildren();
  } finally {
    await pool.destroy();
  }
});

test('a pool destroyed with a batch in flight: every run settles, every child is reaped', async () => {
  const pool = new SpawnPool({ threads: 2, engine: ENGINE });
  const fdsBefore = await warmUp(() => new Command('/bin/true').run({ pool }), { pool, threads: 2 });
  const runs = Array.from({ length: 600 }, (_, i) => i % 2 === 0
    ? new Command('/bin/sleep', 'infinity').captureError().run({ pool })
    : new Command(HELPER, '--no-log').inputBuffer(randomBytes(200_000)).captureOutput().run({ pool }));
  const settled = Promise.all(runs.map(codeOf));
  // Some of them on their way to a worker, some spawned, many still queued here.
  await new Promise((r) => setImmediate(r));
  await pool.destroy();
  const codes = await settled;
  codes.forEach((code, i) => {
    if (i % 2 === 0) assert.is(code, 'EPOOLCLOSED', `run ${i}`);
    else assert.ok(code === 'ok' || code === 'EPOOLCLOSED', `run ${i}: ${code}`);
  });
  await untilNoChildren();
  assert.ok(openFds().length <= fdsBefore, `fds: ${fdsBefore} before, ${openFds().length} after`);
});

test('close() waiting for runs, then destroy(): both settle, and so does every run', async () => {
  const pool = new SpawnPool({ threads: 1, engine: ENGINE });
  const runs = Array.from({ length: 20 }, () => codeOf(new Command('/bin/sleep', 'infinity').run({ pool })));
  await new Promise((r) => setImmediate(r));
  const closing = pool.close();
  await pool.destroy();
  await closing;
  assert.equal(await Promise.all(runs), Array(20).fill('EPOOLCLOSED'));
  await untilNoChildren();
});

test.run();
