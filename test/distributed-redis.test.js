// The queue's Redis, a real server on a private Unix socket: reached by the
// URL forms the CLI takes, refused when it may evict keys, and an
// unreachable one reported with the address but never the password.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QueueError, connect, parseQueueUrl, requireNoEviction } from '../dist/distributed.js';
import { redisTest, serveRedis } from './_redis.js';

const redis = serveRedis(test);

async function refused(promise, code, text) {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, QueueError);
    assert.is(err.code, code);
    assert.match(err.message, text);
    assert.not.match(err.message, 'hunter2');
    return;
  }
  assert.unreachable(`expected ${code}`);
}

redisTest(test, 'a unix:// URL with a database reaches the server; noeviction passes, any other policy is refused', async () => {
  const conn = parseQueueUrl(`${redis.server.url}?db=3`, {});
  const client = await connect(conn);
  try {
    await client.set('spawnpool-test', 'x');
    assert.is(await client.get('spawnpool-test'), 'x');
    assert.match(await client.client('INFO'), 'db=3');
    await requireNoEviction(client, conn.shown);
    await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await refused(requireNoEviction(client, conn.shown), 'EQUEUE', `the queue at ${conn.shown} has maxmemory-policy allkeys-lru`);
    await client.config('SET', 'maxmemory-policy', 'noeviction');
    await requireNoEviction(client, conn.shown);
  } finally {
    client.disconnect();
  }
});

redisTest(test, 'an unreachable queue is named (its password redacted) with the errno', async () => {
  await refused(connect(parseQueueUrl(`unix://${redis.server.socket}.missing`, {})), 'ENOENT', `${redis.server.socket}.missing`);
  await refused(connect(parseQueueUrl('redis://spawnpool:hunter2@127.0.0.1:1/0', {})), 'ECONNREFUSED', 'redis://spawnpool:***@127.0.0.1:1/0');
});

test.run();
