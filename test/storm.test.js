// A storm of 2000 runs on one pool mixing every ending, then a seeded fuzz of
// the builder with junk. Afterwards: no child left, no fd leaked, every run
// ended the way it had to, and the pool still serves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command, CommandError, SpawnPool } from '../dist/index.js';
import { ENGINE, HELPER, codeOf, openFds, untilNoChildren, warmUp } from './_support.js';

/** A small seeded generator (mulberry32): failures replay exactly. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BIG_INPUT = Buffer.alloc(512 * 1024, 'z');

/** Each kind: how to start it, and the code its run must end with ('ok' for success). */
const KINDS = {
  ok: { expect: 'ok', run: (pool) => new Command('/bin/true').run({ pool }) },
  exit: { expect: 'EEXIT', run: (pool) => new Command(HELPER, '--no-log', '--exit', '7').run({ pool }) },
  signal: { expect: 'ESIGNAL', run: (pool) => new Command(HELPER, '--no-log', '--signal', '9').run({ pool }) },
  timeout: { expect: 'ETIMEDOUT', run: (pool) => new Command('/bin/sleep', 'infinity').run({ pool, timeoutMs: 20 }) },
  abort: {
    expect: 'EABORTED',
    run: async (pool) => {
      const running = await new Command('/bin/sleep', 'infinity').runAsync({ pool });
      await running.abort();
      return running.wait();
    },
  },
  signalAbort: {
    expect: 'EABORTED',
    run: (pool) => new Command('/bin/sleep', 'infinity').run({ pool, signal: AbortSignal.timeout(15) }),
  },
  maxBuffer: {
    expect: 'EMAXBUFFER',
    run: (pool) => new Command(HELPER, '--no-log', '--spam-stdout', '1000000').captureOutput().maxBuffer(1000).run({ pool }),
  },
  bigInput: {
    expect: 'ok',
    run: async (pool) => {
      const r = await new Command('/bin/cat').inputBuffer(BIG_INPUT).captureOutput({ encoding: 'buffer' }).run({ pool });
      if (!Buffer.from(r.stdout).equals(BIG_INPUT)) throw new Error('cat gave back other bytes');
      return r;
    },
  },
  missing: { expect: 'ENOENT', run: (pool) => new Command('/nonexistent/program').run({ pool }) },
};

const settle = (kind, pool) => codeOf(KINDS[kind].run(pool));

test('a storm of 2000 mixed runs: each ends as it must, nothing is left behind', async () => {
  const pool = new SpawnPool({ threads: 2, engine: ENGINE });
  // Warm up first: the threads and their lazily opened fds exist before the count.
  const fdsBefore = await warmUp(() => new Command('/bin/true').run({ pool }), { pool, threads: 2 });
  const next = random(2026);
  const names = Object.keys(KINDS);
  const kinds = Array.from({ length: 2000 }, () => names[Math.floor(next() * names.length)]);
  const endings = [];
  let cursor = 0;
  // 64 lanes, so that many runs are in flight at once.
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (cursor < kinds.length) {
      const i = cursor++;
      endings[i] = await settle(kinds[i], pool);
    }
  }));
  const wrong = kinds.map((k, i) => [i, k, endings[i]]).filter(([, k, got]) => KINDS[k].expect !== got);
  assert.equal(wrong, [], `runs that ended otherwise: ${JSON.stringify(wrong.slice(0, 10))}`);
  for (const name of names) assert.ok(kinds.includes(name), `the storm has no ${name} run`);
  await untilNoChildren();
  assert.ok(openFds().length <= fdsBefore, `fds: ${fdsBefore} before, ${openFds().length} after`);
  // The pool still serves.
  assert.is((await new Command('/bin/echo', 'after').captureOutput().run({ pool })).stdout, 'after\n');
  await pool.destroy();
});

/** Junk of every kind a caller could pass by mistake. */
function junk(next) {
  const pool = [
    undefined, null, true, 0, -1, 1.5, NaN, Infinity, 2 ** 31, -(2 ** 40), 10n, -3n, '', 'x', 'a=b', 'nul\0byte', '=',
    'LONG'.repeat(1000), [], ['a'], [1, 2], {}, { encoding: 'nope' }, { encoding: 'buffer' }, () => 1, Symbol('s'),
    new Uint8Array(3), Buffer.from('buf'), new Date(0), /re/, 'SIGKILL', 'SIGBOGUS', 3, 9, 255,
  ];
  return pool[Math.floor(next() * pool.length)];
}

const METHODS = [
  'arg', 'argPair', 'argFormat', 'args', 'envPassCommon', 'envPass', 'envPair', 'envString', 'envClear', 'envXDG',
  'cwd', 'passFd', 'inputFd', 'outputFd', 'errorFd', 'inputBuffer', 'captureOutput', 'captureError',
  'captureCombined', 'maxBuffer', 'rawStatus', 'inputPipe', 'outputPipe', 'errorPipe', 'toString', 'getArgList',
  'sendBuffer', 'nonblockingFds',
];

test('fuzz: builder calls and run options with junk throw only CommandError, and the pool keeps serving', async () => {
  const pool = new SpawnPool({ threads: 2, engine: ENGINE });
  const next = random(7);
  const other = [];
  let thrown = 0;
  let ran = 0;
  for (let round = 0; round < 400; round++) {
    let cmd;
    try {
      cmd = next() < 0.1 ? Command.fromArgv(junk(next)) : new Command(next() < 0.8 ? '/bin/true' : junk(next), junk(next));
      for (let calls = Math.floor(next() * 3); calls > 0; calls--) {
        const method = METHODS[Math.floor(next() * METHODS.length)];
        const args = Array.from({ length: Math.floor(next() * 3) }, () => junk(next));
        cmd[method](...args);
      }
    } catch (err) {
      if (err instanceof CommandError && err.code === 'EINVAL') thrown++;
      else other.push(`builder: ${err?.name} ${err?.code} ${err?.message}`);
      continue;
    }
    // Whatever survived the builder runs, with junk options now and then,
    // and a short timeout: a junk fd may be a pipe that never ends.
    const options = next() < 0.3 ? { pool, timeoutMs: 200, [['status', 'killSignal', 'killGraceMs', 'timeoutMs'][Math.floor(next() * 4)]]: junk(next) }
      : { pool, timeoutMs: 200 };
    try {
      await cmd.run(options);
      ran++;
    } catch (err) {
      if (err instanceof CommandError) ran++;
      else other.push(`run: ${err?.name} ${err?.code} ${err?.message}`);
    }
  }
  assert.equal(other, []);
  assert.ok(thrown > 50 && ran > 50, `thrown ${thrown}, ran ${ran}`);
  assert.is((await new Command('/bin/echo', 'still here').captureOutput().run({ pool })).stdout, 'still here\n');
  await pool.destroy();
  await untilNoChildren();
});

test.run();
