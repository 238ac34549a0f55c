// Jobs as the queue holds them: ids of any form get a queue id BullMQ
// accepts, distinct for distinct ids; what a worker reads back is checked
// field by field, and with a key only a job signed for its batch passes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { queueJobId, readJobData, toJobData } from '../dist/distributed.js';

const key = randomBytes(32);
const fields = { batch: 'b1', id: '123', argv: ['/bin/echo', 'hi'], env: { A: '1' }, cwd: '/tmp', input: 'text\n', timeoutMs: 5000 };

test('queue ids: digits, colons, unicode, percent signs and spaces all map to distinct ids without ":" and never only digits', () => {
  const ids = ['123', '0', 'a:b', 'a%3Ab', '✓ ünïcode 😀', ' ', 'j123', '%', 'x'.repeat(300)];
  const queued = ids.map(queueJobId);
  assert.is(new Set(queued).size, ids.length);
  for (const q of queued) {
    assert.not.match(q, ':');
    assert.not.match(q, /^\d+$/);
  }
  ids.forEach((id, i) => assert.is(decodeURIComponent(queued[i].slice(1)), id));
  assert.is(queueJobId('\ud800 lone surrogate'), undefined);
});

test('a signed job reads back with its key; unsigned data is refused by a worker that has one', () => {
  const signed = toJobData(fields, 7, key);
  const back = readJobData(JSON.parse(JSON.stringify(signed)), 'b1', key);
  assert.is(back.ok, true);
  assert.equal(back.job.argv, fields.argv);
  assert.is(back.job.line, 7);
  const unsigned = toJobData(fields, 7, undefined);
  assert.is(unsigned.sig, undefined);
  assert.is(readJobData(unsigned, 'b1', undefined).ok, true);
  const refused = readJobData(unsigned, 'b1', key);
  assert.equal([refused.ok, refused.code, refused.id], [false, 'EBADSIG', '123']);
  assert.match(refused.message, 'is not signed');
});

test('forged or replayed: a changed argv, another key, another batch are EBADSIG; junk is EINVAL', () => {
  const signed = toJobData(fields, 7, key);
  const forged = readJobData({ ...signed, argv: ['/bin/sh', '-c', 'id'] }, 'b1', key);
  assert.equal([forged.ok, forged.code], [false, 'EBADSIG']);
  const otherKey = readJobData(toJobData(fields, 7, randomBytes(32)), 'b1', key);
  assert.equal([otherKey.ok, otherKey.code], [false, 'EBADSIG']);
  const replay = readJobData(signed, 'b2', key);
  assert.equal([replay.ok, replay.code], [false, 'EBADSIG']);
  assert.match(replay.message, 'belongs to batch "b1", not "b2"');
  for (const [junk, text] of [
    [null, 'not an object'], ['a string', 'not an object'], [[1], 'not an object'], [{ ...signed, id: 5 }, 'no batch or id'], [{ ...signed, v: 2 }, 'version 2'], [{ ...signed, argv: [] }, 'argv'],
    [{ ...signed, argv: ['/bin/true', 1] }, 'argv'], [{ ...signed, env: { A: 1 } }, 'env'], [{ ...signed, timeoutMs: -1 }, 'limit'],
    [{ ...signed, extra: 1 }, 'unknown field "extra"'], [{ ...signed, line: 'x' }, 'line'], [{ ...signed, capture: 'yes' }, 'capture'],
  ]) {
    const v = readJobData(junk, 'b1', key);
    assert.equal([v.ok, v.code], [false, 'EINVAL'], JSON.stringify(junk));
    assert.match(v.message, text);
  }
});

/** Runs `body` (an async function's text, `dist` in scope) in a fresh node; prints whether ioredis was loaded. */
function ioredisLoaded(body) {
  const dist = fileURLToPath(new URL('../dist/', import.meta.url));
  const program = `const dist = ${JSON.stringify(dist)}; ${body};
    const { createRequire } = await import('node:module');
    process.stdout.write(String(Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/ioredis/'))));
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('a program that never distributes never loads the queue client; spawnpool/distributed loads it on connect()', () => {
  assert.is(ioredisLoaded("const sp = await import(dist + 'index.js'); await new sp.Command('/bin/true').run()"), 'false');
  assert.is(ioredisLoaded("const d = await import(dist + 'distributed.js'); d.signJob({ batch: 'b', id: '1', argv: ['x'] }, Buffer.alloc(32))"), 'false');
  assert.is(ioredisLoaded("const d = await import(dist + 'distributed.js'); await d.connect(d.parseQueueUrl('unix:///nonexistent.sock', {})).catch(() => 0)"), 'true');
});

test.run();
