// A run that is only a program by absolute path, its arguments and the
// inherited environment takes the worker's short way (plain-runs.ts) on the
// native engine; give it a timeout and it takes the general one. Both must
// end alike, on every path: success, failure with stderr's tail, a signal,
// a program that is not there, the environment changing, a destroy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command, CommandError, SpawnPool } from '../dist/index.js';
import { ENGINE, codeOf, openFds, untilNoChildren, warmUp } from './_support.js';

const FAR = 600_000;

async function settle(promise) {
  try {
    const r = await promise;
    return { ok: true, status: r.status, signal: r.signal ?? null, pidSet: r.pid > 0 };
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    return { ok: false, code: err.code, status: err.exitStatus ?? null, signal: err.signal ?? null, message: err.message, pidSet: err.pid > 0 };
  }
}

test('plain runs end as the same runs on the general path: status, signal, stderr tail, a missing program', async () => {
  const pool = new SpawnPool({ threads: 1, engine: ENGINE });
  try {
    const cases = [
      ['/bin/true'],
      ['/bin/sh', '-c', 'echo "first line" >&2; echo "the reason" >&2; exit 3'],
      ['/bin/sh', '-c', 'kill -TERM $$'],
      ['/nonexistent/program', 'x'],
      ['/bin/sh', '-c', 'exec 2>&-; exit 0'],
    ];
    for (const argv of cases) {
      const [plain, general] = await Promise.all([
        settle(new Command(...argv).run({ pool })),
        settle(new Command(...argv).run({ pool, timeoutMs: FAR })),
      ]);
      assert.equal(plain, general, argv.join(' '));
    }
    const failed = await settle(new Command('/bin/sh', '-c', 'echo "the reason" >&2; exit 3').run({ pool }));
    assert.is(failed.status, 3);
    assert.match(failed.message, 'the reason');
    const missing = await settle(new Command('/nonexistent/program').run({ pool }));
    assert.is(missing.code, 'ENOENT');
    assert.is(missing.pidSet, false);
  } finally {
    await pool.destroy();
  }
});

test('a plain run gets the environment of its run(), whether the worker holds that block or is sent a new one', async () => {
  const pool = new SpawnPool({ threads: 1, engine: ENGINE });
  const name = `SPAWNPOOL_PLAIN_${process.pid}`;
  const has = (value) => codeOf(new Command('/bin/sh', '-c', `test "x$${name}" = "x${value}"`).run({ pool }));
  try {
    assert.equal(await Promise.all([has(''), has('')]), ['ok', 'ok']);
    process.env[name] = 'one';
    assert.equal(await Promise.all([has('one'), has('one'), has('')]), ['ok', 'ok', 'EEXIT']);
    process.env[name] = 'two';
    assert.is(await has('two'), 'ok');
    delete process.env[name];
    assert.is(await has(''), 'ok');
  } finally {
    delete process.env[name];
    await pool.destroy();
  }
});

test('a destroy with plain and general runs in flight: each run rejects EPOOLCLOSED, every child is reaped', async () => {
  const pool = new SpawnPool({ threads: 2, engine: ENGINE });
  const fdsBefore = await warmUp(() => new Command('/bin/true').run({ pool }), { pool, threads: 2 });
  const runs = Array.from({ length: 200 }, (_, i) => i % 2 === 0
    ? new Command('/bin/sleep', 'infinity').run({ pool })
    : new Command('/bin/sleep', 'infinity').run({ pool, timeoutMs: FAR }));
  const settled = Promise.all(runs.map(codeOf));
  // Spawned by now, most of them: a run rejects once its child is reaped.
  while (pool.stats().running < 100) await new Promise((r) => setTimeout(r, 10));
  await pool.destroy();
  assert.equal(await settled, Array(200).fill('EPOOLCLOSED'));
  await untilNoChildren();
  assert.ok(openFds().length <= fdsBefore, `fds: ${fdsBefore} before, ${openFds().length} after`);
  // A destroyed pool refuses what comes after.
  assert.is(await codeOf(new Command('/bin/true').run({ pool })), 'EPOOLCLOSED');
});

test.run();
