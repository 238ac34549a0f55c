// A worker thread that dies (here: an uncaught error thrown in it) takes no
// child with it unkilled or unreaped: its runs reject EWORKER, its children
// are killed and reaped, and piscina starts a thread in its place.
//
// The death is real: a module preloaded with --import into every thread of a
// separate host process throws from the worker when the host asks over a
// BroadcastChannel. The host reports what it sees of its own children, which
// only it can reap.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE, tmpBase } from './_support.js';

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const hook = join(tmpBase, 'crash-hook.mjs');
writeFileSync(hook, `import { isMainThread, BroadcastChannel } from 'node:worker_threads';
if (!isMainThread) {
  const channel = new BroadcastChannel('spawnpool-test-crash');
  channel.onmessage = () => setImmediate(() => { throw new Error('injected worker crash'); });
  channel.unref();
}
`);

const host = join(tmpBase, 'worker-death-host.mjs');
writeFileSync(host, `import { readFileSync, readdirSync } from 'node:fs';
import { BroadcastChannel } from 'node:worker_threads';
import { Command, SpawnPool } from ${JSON.stringify(entry)};

/** This process's children, alive or zombie: [pid, state]. */
function children() {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(\`/proc/\${e}/stat\`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid) out.push([Number(e), fields[0]]);
    } catch {}
  }
  return out;
}

const pool = new SpawnPool({ threads: 1, engine: process.argv[2] });
const handles = await Promise.all([1, 2, 3].map(() => new Command('/bin/sleep', 'infinity').runAsync({ pool })));
const plain = new Command('/bin/sleep', 'infinity').run({ pool });
while (children().length < 4) await new Promise((r) => setTimeout(r, 5));
const before = children();
const crash = new BroadcastChannel('spawnpool-test-crash');
crash.postMessage('crash');
crash.close();
const settled = await Promise.allSettled([...handles.map((h) => h.wait()), plain]);
// Killed at once; reaped as the thread's loop winds down.
let left = children();
for (let i = 0; i < 500 && left.length > 0; i++) {
  await new Promise((r) => setTimeout(r, 10));
  left = children();
}
const again = await new Command('/bin/echo', 'still serving').captureOutput().run({ pool });
const stats = pool.stats();
await pool.close();
process.stdout.write(JSON.stringify({
  before: before.length,
  pids: handles.map((h) => h.pid),
  errors: settled.map((s) => s.status === 'rejected' ? { code: s.reason.code, message: s.reason.message } : { resolved: true }),
  left,
  again: again.stdout,
  threads: stats.threads,
  workerLost: stats.outcomes.workerLost,
}));
`);

function runHost() {
  const child = spawn(process.execPath, ['--import', hook, host, ENGINE], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`host exited ${code}: ${err}`));
      else resolve(JSON.parse(out));
    });
  });
}

test('a worker that dies: its runs reject EWORKER, its children are killed and reaped, a new thread serves', async () => {
  const r = await runHost();
  assert.is(r.before, 4);
  assert.is(r.errors.length, 4);
  for (const e of r.errors) {
    assert.is(e.code, 'EWORKER');
    assert.match(e.message, /\/bin\/sleep infinity: the worker thread running it died \(injected worker crash\); its child was killed/);
  }
  // Neither alive nor left as a zombie.
  assert.equal(r.left, []);
  assert.is(r.again, 'still serving\n');
  assert.is(r.threads, 1);
  assert.is(r.workerLost, 4);
});

test.run();
