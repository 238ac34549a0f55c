import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, SpawnPool } from '../dist/index.js';
import { ENGINE, helper, processState, rejectsWith, throwsWith, tmpBase } from './_support.js';

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const here = dirname(fileURLToPath(import.meta.url));

const NO_OUTCOMES = { ok: 0, exit: 0, signal: 0, timeout: 0, abort: 0, maxBuffer: 0, spawnFailure: 0, pool: 0, workerLost: 0 };
const NO_LATENCY = { count: 0, p50: 0, p99: 0, max: 0 };

test('stats count threads, running, queued, outcomes, and keep latency histograms', async () => {
  const p = new SpawnPool({ threads: 1, engine: ENGINE });
  try {
    assert.equal(p.stats(), {
      threads: 1, running: 0, queued: 0, completed: 0, failed: 0, outcomes: NO_OUTCOMES,
      queueWaitMs: NO_LATENCY, spawnMs: NO_LATENCY, runMs: NO_LATENCY,
    });
    const running = await new Command('/bin/sleep', 'infinity').runAsync({ pool: p });
    assert.is(p.stats().running, 1);
    await new Command('/bin/true').run({ pool: p });
    await rejectsWith(new Command('/bin/false').run({ pool: p }), 'EEXIT');
    await rejectsWith(new Command('/nonexistent/x').run({ pool: p }), 'ENOENT');
    await rejectsWith(new Command('/bin/sleep', 'infinity').run({ pool: p, timeoutMs: 1 }), 'ETIMEDOUT');
    await rejectsWith(new Command('/bin/sh', '-c', 'kill -9 $$').run({ pool: p }), 'ESIGNAL');
    await rejectsWith(new Command('/bin/echo', 'too much').captureOutput().maxBuffer(2).run({ pool: p }), 'EMAXBUFFER');
    await running.abort();
    const s = p.stats();
    assert.equal({ running: s.running, queued: s.queued, completed: s.completed, failed: s.failed }, { running: 0, queued: 0, completed: 1, failed: 6 });
    assert.equal(s.outcomes, { ...NO_OUTCOMES, ok: 1, exit: 1, signal: 1, timeout: 1, abort: 1, maxBuffer: 1, spawnFailure: 1 });
    // Every run waited in the queue; the six that started were spawned and ran.
    assert.is(s.queueWaitMs.count, 7);
    assert.is(s.spawnMs.count, 6);
    assert.is(s.runMs.count, 6);
    for (const h of [s.queueWaitMs, s.spawnMs, s.runMs]) assert.ok(h.p50 > 0 && h.p50 <= h.p99 && h.p99 <= h.max, JSON.stringify(h));
  } finally {
    await p.destroy();
  }
  await rejectsWith(new Command('/bin/true').run({ pool: p }), 'EPOOLCLOSED');
  assert.is(p.stats().outcomes.pool, 1);
});

test('each worker runs many children at once', async () => {
  const p = new SpawnPool({ threads: 1, engine: ENGINE });
  try {
    const handles = await Promise.all(Array.from({ length: 20 }, () => new Command('/bin/sleep', 'infinity').runAsync({ pool: p })));
    assert.is(p.stats().running, 20);
    assert.ok(handles.every((h) => processState(h.pid) === 'alive'));
    await Promise.all(handles.map((h) => h.abort()));
    assert.ok(handles.every((h) => processState(h.pid) === 'gone'));
  } finally {
    await p.destroy();
  }
});

test('close() finishes running work, then refuses new work with EPOOLCLOSED', async () => {
  const p = new SpawnPool({ threads: 1, engine: ENGINE });
  const h = helper();
  const running = new Command(h.path, '--no-log', '--sleep', '100').captureOutput().run({ pool: p });
  await new Promise((r) => setTimeout(r, 20));
  const closing = p.close();
  await rejectsWith(new Command('/bin/true').run({ pool: p }), 'EPOOLCLOSED');
  assert.is((await running).status, 0);
  await closing;
  await rejectsWith(new Command('/bin/true').run({ pool: p }), 'EPOOLCLOSED');
  await p.close();
});

test('destroy() kills every child, reaps it, and stops the workers', async () => {
  const p = new SpawnPool({ threads: 2, engine: ENGINE });
  const handles = await Promise.all(Array.from({ length: 6 }, () => new Command('/bin/sleep', 'infinity').runAsync({ pool: p })));
  const plain = rejectsWith(new Command('/bin/sleep', 'infinity').run({ pool: p }), 'EPOOLCLOSED');
  await p.destroy();
  for (const h of handles) {
    assert.is(processState(h.pid), 'gone');
    const err = await rejectsWith(h.wait(), 'EPOOLCLOSED');
    assert.is(err.signal, 'SIGKILL');
  }
  await plain;
  await rejectsWith(new Command('/bin/true').run({ pool: p }), 'EPOOLCLOSED');
  assert.is(p.stats().threads, 0);
  await p.destroy();
});

test('without the addon: one warning and the child_process engine; native asked for is ENOTSUP', () => {
  // A copy of the bundles with no dist/native/ beside them (node_modules still resolves).
  const dist = join(here, 'helper', 'build', 'no-native', 'dist');
  mkdirSync(dist, { recursive: true });
  // The entries and the chunks they share; not dist/native/.
  const built = readdirSync(join(here, '..', 'dist')).filter((f) => f.endsWith('.js'));
  for (const f of built) copyFileSync(join(here, '..', 'dist', f), join(dist, f));
  const script = join(dist, '..', 'fallback.mjs');
  writeFileSync(script, `import { Command, SpawnPool } from './dist/index.js';
const a = new SpawnPool({ threads: 1 });
const b = new SpawnPool({ threads: 1 });
const r = await new Command('/bin/echo', 'fallback').captureOutput().run({ pool: b });
process.stdout.write(r.stdout);
try { new SpawnPool({ engine: 'native' }); } catch (err) { console.log(err.code, err.message); }
await a.destroy(); await b.destroy();
`);
  const res = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
  assert.is(res.status, 0, res.stderr);
  const lines = res.stdout.split('\n');
  assert.is(lines[0], 'fallback');
  assert.match(lines[1], /^ENOTSUP SpawnPool: the native engine is not available: cannot load .*spawnpool_native\.node/);
  const warnings = res.stderr.split('\n').filter((l) => l.includes('SPAWNPOOL_NO_NATIVE'));
  assert.is(warnings.length, 1, res.stderr);
  assert.match(warnings[0], /using the child_process engine/);
});

test('bad pool options are EINVAL', () => {
  throwsWith(() => new SpawnPool({ threads: 0 }), 'EINVAL');
  throwsWith(() => new SpawnPool({ threads: 1.5 }), 'EINVAL');
  throwsWith(() => new SpawnPool({ maxQueue: -1 }), 'EINVAL');
  throwsWith(() => new SpawnPool({ engine: 'fork' }), 'EINVAL');
  throwsWith(() => new SpawnPool(null), 'EINVAL');
});

test('maxQueue: 0: past the threads\' capacity runs reject EQUEUEFULL, counted as refused by the pool, never as a lost worker', async () => {
  const p = new SpawnPool({ threads: 1, maxQueue: 0, engine: ENGINE });
  try {
    const results = await Promise.allSettled(Array.from({ length: 300 }, () => new Command('/bin/true').run({ pool: p })));
    const codes = new Set(results.map((r) => (r.status === 'fulfilled' ? 'ok' : r.reason.code)));
    assert.equal([...codes].sort(), ['EQUEUEFULL', 'ok']);
    const refused = results.filter((r) => r.status === 'rejected').length;
    assert.is(p.stats().outcomes.pool, refused);
    assert.is(p.stats().outcomes.workerLost, 0);
  } finally {
    await p.destroy();
  }
});

test('maxQueue: runs past it reject EQUEUEFULL', async () => {
  const p = new SpawnPool({ threads: 1, maxQueue: 1, engine: ENGINE });
  try {
    // Fill the worker (256 at once), then the queue.
    const busy = Array.from({ length: 256 }, () => new Command('/bin/sleep', 'infinity').runAsync({ pool: p }));
    const handles = await Promise.all(busy);
    const queued = new Command('/bin/true').run({ pool: p });
    await rejectsWith(new Command('/bin/true').run({ pool: p }), 'EQUEUEFULL');
    await Promise.all(handles.map((h) => h.abort()));
    assert.is((await queued).status, 0);
  } finally {
    await p.destroy();
  }
});

test('a script that runs one command on the default pool exits by itself', () => {
  const script = join(tmpBase, 'one-shot.mjs');
  writeFileSync(script, `import { Command } from ${JSON.stringify(entry)};\n` +
    `const r = await new Command('/bin/echo', 'hi').captureOutput().run();\nprocess.stdout.write(r.stdout);\n`);
  const res = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
  assert.is(res.signal, null, 'the script did not exit by itself');
  assert.is(res.status, 0, res.stderr);
  assert.is(res.stdout, 'hi\n');
});

test.run();
