// Workers and a submitter on a real Redis (a private Unix socket): every
// job runs and is published once, ids of any form survive, and a worker
// with a key or an allow list runs nothing forged, unsigned or unlisted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import {
  AllowList, DistributedWorker, Submitter, ackResults, connect, parseQueueUrl, readResults, signJob,
} from '../dist/distributed.js';
import { tmpBase } from './_support.js';
import { redisTest, serveRedis } from './_redis.js';

const redis = serveRedis(test);

/** Reads the batch's results until `n` have come, deleting each once read. */
async function collect(client, batch, n) {
  const got = [];
  for (let i = 0; got.length < n; i++) {
    if (i > 600) throw new Error(`only ${got.length} of ${n} results came`);
    const batchOf = await readResults(client, batch, '0', 500, 100);
    got.push(...batchOf.map((r) => r.result));
    await ackResults(client, batch, batchOf.map((r) => r.entry));
  }
  return got;
}

redisTest(test, 'two workers, 300 jobs with ids of every form: each job runs once and is published once, nothing left in Redis', async () => {
  const conn = parseQueueUrl(redis.server.url, {});
  const key = randomBytes(32);
  const batch = 'many';
  const marker = join(tmpBase, 'many.runs');
  const allow = AllowList.from(['/bin/sh']);
  const workers = await Promise.all(['A', 'B'].map((name) => DistributedWorker.start({ queue: conn, batch, jobs: 4, leaseMs: 2000, key, allow, name })));
  const submitter = await Submitter.open(conn, batch, key);
  const client = await connect(conn);
  try {
    const ids = Array.from({ length: 300 }, (_, i) => [String(i), `a:${i}`, `✓ ünï ${i} 😀`, `%41 ${i}`][i % 4]);
    await submitter.submit(ids.map((id, i) => ({ line: i + 1, fields: { id, argv: ['/bin/sh', '-c', 'printf "%s\\n" "$1" >> "$2"', 'sh', id, marker] } })));
    const results = await collect(client, batch, 300);
    assert.equal(results.map((r) => r.id).sort(), [...ids].sort());
    assert.ok(results.every((r) => r.ok && r.status === 0 && r.code === null && r.starts === 1 && r.pid > 0), JSON.stringify(results.find((r) => !r.ok)));
    assert.ok(results.every((r) => r.host === 'A' || r.host === 'B'));
    assert.equal(results.map((r) => r.line).sort((a, b) => a - b), ids.map((_, i) => i + 1));
    assert.equal(readFileSync(marker, 'utf8').trimEnd().split('\n').sort(), [...ids].sort());
    const counts = await submitter.counts();
    assert.equal(counts, { waiting: 0, active: 0, delayed: 0, failed: 0 });
    assert.is(await client.xlen('sp-many:results'), 0);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await submitter.close();
    client.disconnect();
  }
});

redisTest(test, 'a forged job (written straight into Redis), an unsigned one and an unlisted program: reported, never run', async () => {
  const conn = parseQueueUrl(redis.server.url, {});
  const key = randomBytes(32);
  const batch = 'guarded';
  const ran = (name) => existsSync(join(tmpBase, `guarded.${name}`));
  const touch = (name) => ['/bin/sh', '-c', `: > ${join(tmpBase, `guarded.${name}`)}`];
  const worker = await DistributedWorker.start({ queue: conn, batch, jobs: 2, leaseMs: 2000, key, allow: AllowList.from(['/bin/sh']), name: 'W' });
  const signedSubmitter = await Submitter.open(conn, batch, key);
  const unsignedSubmitter = await Submitter.open(conn, batch);
  const client = await connect(conn);
  const queue = new Queue('sp-guarded', { connection: { path: redis.server.socket } });
  try {
    // Signed for one command, carrying another.
    const honest = { v: 1, line: 1, batch, id: 'forged', argv: ['/bin/true'] };
    await queue.add('run', { ...honest, argv: touch('forged'), sig: signJob(honest, key) }, { jobId: 'jforged', removeOnComplete: true });
    // Signed with a key this worker does not have.
    const other = { v: 1, line: 2, batch, id: 'other-key', argv: touch('other-key') };
    await queue.add('run', { ...other, sig: signJob(other, randomBytes(32)) }, { jobId: 'jother-key', removeOnComplete: true });
    await unsignedSubmitter.submit([{ line: 3, fields: { id: 'unsigned', argv: touch('unsigned') } }]);
    await signedSubmitter.submit([
      { line: 4, fields: { id: 'unlisted', argv: ['/usr/bin/env', 'sh', '-c', `: > ${join(tmpBase, 'guarded.unlisted')}`] } },
      { line: 5, fields: { id: 'fine', argv: touch('fine') } },
    ]);
    const byId = Object.fromEntries((await collect(client, batch, 5)).map((r) => [r.id, r]));
    for (const id of ['forged', 'other-key', 'unsigned']) {
      assert.equal([byId[id].ok, byId[id].code, byId[id].pid], [false, 'EBADSIG', null], id);
      assert.is(ran(id), false, `${id} ran`);
    }
    assert.match(byId.forged.message, 'does not verify');
    assert.match(byId.unsigned.message, 'is not signed');
    assert.equal([byId.unlisted.ok, byId.unlisted.code], [false, 'EPERM']);
    assert.match(byId.unlisted.message, 'is not among the programs this worker may run');
    assert.is(ran('unlisted'), false);
    assert.equal([byId.fine.ok, byId.fine.line], [true, 5]);
    assert.is(ran('fine'), true);
  } finally {
    await worker.stop();
    await Promise.all([signedSubmitter.close(), unsignedSubmitter.close(), queue.close()]);
    client.disconnect();
  }
});

test.run();
