// spawnpool run --queue, worker, submit, status and cancel as real
// processes on a real Redis (a private Unix socket): every job logged once
// whatever dies when, nothing left behind in Redis, and nothing run that
// was forged or is off the worker's list.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { CLI, dir, jsonLines } from './_cli.js';
import { ENGINE } from './_support.js';
import { redisTest, serveRedis, startRedis } from './_redis.js';
import { spawn } from 'node:child_process';
import net from 'node:net';

// Workers run their jobs on the native engine whatever the suite's engine
// (a job must die with its worker), and the coordinator spawns nothing:
// once, on the native pass.
const ONCE = ENGINE === 'native';
if (!ONCE) console.log('  distributed CLI tests: on the native pass only (workers always run the native engine)');
const redis = ONCE ? serveRedis(test) : { server: undefined };
// Not registered at all on the other pass: uvu's files share one default suite.
const rtest = ONCE ? redisTest : () => undefined;
const LEASE = '2s';

// Whatever a failed test left running is killed after the file: a child
// left behind would stall the tests that count this process's children.
const spawned = new Set();
if (ONCE) {
  test.after.each(() => {
    for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    spawned.clear();
  });
}

/** A CLI process, its stderr kept, its exit awaited (bounded: a hang fails the test, it does not stall the suite). */
function proc(args, { cwd, env } = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: env && { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.add(child);
  const p = { child, stdout: '', stderr: '', code: undefined };
  child.stdout.on('data', (d) => (p.stdout += d));
  child.stderr.on('data', (d) => (p.stderr += d));
  p.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((p.code = code ?? signal))));
  p.exit = async (limitMs = 60_000) => {
    let timer;
    const late = new Promise((resolve) => (timer = setTimeout(() => resolve('hung'), limitMs)));
    const got = await Promise.race([p.exited, late]);
    clearTimeout(timer);
    if (got === 'hung') {
      child.kill('SIGKILL');
      throw new Error(`spawnpool ${args[0]} did not exit: ${p.stderr}`);
    }
    return got;
  };
  return p;
}

async function waitFor(what, condition, limitMs = 30_000) {
  const end = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`waited in vain for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A worker process, once it has said it runs. */
async function worker(batch, name, extra = []) {
  const w = proc(['worker', '--queue', redis.server.url, '--batch', batch, '--lease', LEASE, '--name', name, ...extra]);
  await waitFor(`worker ${name} to start`, () => w.stderr.includes('running batch') || w.code !== undefined);
  if (w.code !== undefined) throw new Error(`worker ${name} exited ${w.code}: ${w.stderr}`);
  return w;
}

const coordinator = (file, batch, d, extra = []) =>
  proc(['run', file, '--queue', redis.server.url, '--batch', batch, '--joblog', join(d, 'log'), ...extra]);

const lines = (path) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);
const jobFile = (d, jobs) => {
  const path = join(d, 'jobs.jsonl');
  writeFileSync(path, jobs.map((j) => JSON.stringify(j)).join('\n') + '\n');
  return path;
};
const client = () => new Redis({ path: redis.server.socket });

async function leftInRedis(batch) {
  const c = client();
  try {
    const queue = new Queue(`sp-${batch}`, { connection: c });
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    await queue.close();
    return { ...counts, results: await c.xlen(`sp-${batch}:results`), coordinator: await c.exists(`sp-${batch}:coordinator`) };
  } finally {
    c.disconnect();
  }
}
const EMPTY = { waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0, results: 0, coordinator: 0 };

const ODD_IDS = ['123', 'a:b', '✓ ünï 😀', '%41 x', '0', 'j1', ' spaced '];

rtest(test, 'two workers and a coordinator, 2000 jobs with ids of every form: each logged once, every result written, nothing left in Redis; the same file again enqueues nothing', async () => {
  const d = dir();
  const ids = Array.from({ length: 2000 }, (_, i) => (i < ODD_IDS.length ? ODD_IDS[i] : `n${i}`));
  const file = jobFile(d, ids.map((id) => ({ id, argv: ['/bin/echo', id] })));
  const workers = [await worker('big', 'A', ['-j', '4']), await worker('big', 'B', ['-j', '4'])];
  try {
    const run = coordinator(file, 'big', d, ['--results', join(d, 'results')]);
    assert.is(await run.exit(), 0, run.stderr);
    const log = jsonLines(join(d, 'log'));
    assert.is(log.length, 2000);
    assert.equal(log.map((r) => r.id).sort(), [...ids].sort());
    assert.ok(log.every((r) => r.ok && r.status === 0 && (r.host === 'A' || r.host === 'B') && r.starts >= 1), JSON.stringify(log.find((r) => !r.ok)));
    const results = jsonLines(join(d, 'results'));
    assert.is(results.length, 2000);
    const byId = new Map(results.map((r) => [r.id, r]));
    assert.equal(byId.get('a:b').argv, ['/bin/echo', 'a:b']);
    // Output comes back grouped, on the coordinator's stdout.
    assert.equal(run.stdout.split('\n').filter(Boolean).sort(), ids.map((id) => id).sort());
    assert.equal(await leftInRedis('big'), EMPTY);
    assert.match(run.stderr, '2000 jobs: 2000 ok, 0 failed');

    const again = coordinator(file, 'big', d);
    assert.is(await again.exit(), 0, again.stderr);
    assert.match(again.stderr, '0 jobs: 0 ok, 0 failed, 2000 skipped (logged as finished)');
    assert.is(lines(join(d, 'log')).length, 2000);
  } finally {
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) assert.is(await w.exit(), 130, w.stderr);
  }
});

rtest(test, 'the same batch twice at once: the second coordinator is refused while the first holds the lease', async () => {
  const d = dir();
  const file = jobFile(d, [{ id: 'only', argv: ['/bin/true'] }]);
  const first = coordinator(file, 'twice', d);
  await waitFor('the first coordinator to submit', () => first.stderr.includes('no workers yet'));
  const second = proc(['run', file, '--queue', redis.server.url, '--batch', 'twice', '--joblog', join(d, 'log2')]);
  assert.is(await second.exit(), 4);
  assert.match(second.stderr, /batch twice is being run by [^:]+:\d+/);
  const w = await worker('twice', 'W');
  assert.is(await first.exit(), 0, first.stderr);
  w.child.kill('SIGTERM');
  assert.is(await w.exit(), 130);
  assert.is(lines(join(d, 'log')).length, 1);
  assert.is(existsSync(join(d, 'log2')), false);
});

rtest(test, 'a worker SIGKILLed mid-job: its child dies with it, the job runs again on another worker and is logged once, started twice', async () => {
  const d = dir();
  const pids = join(d, 'pids');
  const marker = join(d, 'marker');
  // The first run sleeps on; the second finds the marker and ends.
  const file = jobFile(d, [{ id: 'k', argv: ['/bin/sh', '-c', 'echo $$ >> "$1"; [ -e "$2" ] && exit 0; : > "$2"; exec sleep 60', 'sh', pids, marker] }]);
  const a = await worker('kill', 'A');
  const run = coordinator(file, 'kill', d);
  await waitFor('the job to start on A', () => lines(pids).length === 1);
  const child = Number(lines(pids)[0]);
  a.child.kill('SIGKILL');
  await a.exit();
  await waitFor('the child of the killed worker to die', () => !existsSync(`/proc/${child}`) || readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1][0] === 'Z');
  const b = await worker('kill', 'B');
  try {
    assert.is(await run.exit(), 0, run.stderr);
    const [r] = jsonLines(join(d, 'log'));
    assert.equal([r.id, r.ok, r.host, r.starts], ['k', true, 'B', 2]);
    assert.is(lines(join(d, 'log')).length, 1);
    assert.is(lines(pids).length, 2);
  } finally {
    b.child.kill('SIGTERM');
    await b.exit();
  }
});

rtest(test, 'SIGTERM on a worker, grace mode: the running job finishes and is logged, then the worker exits 130', async () => {
  const d = dir();
  const started = join(d, 'started');
  const file = jobFile(d, [{ id: 'g', argv: ['/bin/sh', '-c', ': > "$1"; sleep 0.5; echo finished', 'sh', started] }]);
  const a = await worker('grace', 'A', ['--grace', '30s']);
  const run = coordinator(file, 'grace', d, ['--results', join(d, 'results'), '--capture']);
  await waitFor('the job to start', () => existsSync(started));
  a.child.kill('SIGTERM');
  assert.is(await a.exit(), 130, a.stderr);
  assert.is(await run.exit(), 0, run.stderr);
  const [r] = jsonLines(join(d, 'results'));
  assert.equal([r.id, r.status, r.stdout, r.host, r.starts], ['g', 0, 'finished\n', 'A', 1]);
});

rtest(test, 'SIGTERM on a worker, abort mode, ten times in a row: each running job is aborted and put back without using an attempt, and the worker exits', async () => {
  const d = dir();
  const runs = join(d, 'runs');
  // Each job sleeps on the first time it runs, and ends at once the second.
  const jobs = Array.from({ length: 10 }, (_, i) => ({
    id: `t${i}`, argv: ['/bin/sh', '-c', 'echo "$1" >> "$2"; [ -e "$3" ] && exit 0; : > "$3"; exec sleep 60', 'sh', `t${i}`, runs, join(d, `m${i}`)],
  }));
  const run = coordinator(jobFile(d, jobs), 'abort', d);
  for (let i = 0; i < 10; i++) {
    const w = await worker('abort', `A${i}`, ['--grace', '100ms']);
    // Started fresh (the one put back before it ends at once): this worker holds job i, asleep.
    await waitFor(`job t${i} to start`, () => existsSync(join(d, `m${i}`)));
    w.child.kill('SIGTERM');
    assert.is(await w.exit(20_000), 130, w.stderr);
    assert.match(w.stderr, 'go back to the queue');
  }
  const last = await worker('abort', 'B');
  try {
    assert.is(await run.exit(), 0, run.stderr);
    const log = jsonLines(join(d, 'log'));
    assert.equal(log.map((r) => r.id).sort(), jobs.map((j) => j.id).sort());
    // A job fetched again by the closing worker is put back at once, unrun: it counts a start, not an attempt.
    assert.ok(log.every((r) => r.ok && r.attempts === 1 && r.starts >= 2), JSON.stringify(log));
    // Each ran twice: once aborted, once to its end.
    const counted = {};
    for (const id of lines(runs)) counted[id] = (counted[id] ?? 0) + 1;
    assert.equal(Object.values(counted), Array(10).fill(2));
    assert.equal(await leftInRedis('abort'), EMPTY);
  } finally {
    last.child.kill('SIGTERM');
    await last.exit();
  }
});

rtest(test, 'the coordinator SIGKILLed: workers go on, run --resume logs what finished meanwhile and the rest; no job logged twice, none skipped', async () => {
  const d = dir();
  const ran = join(d, 'ran');
  const ids = Array.from({ length: 300 }, (_, i) => `c${i}`);
  const file = jobFile(d, ids.map((id) => ({ id, argv: ['/bin/sh', '-c', 'echo "$1" >> "$2"; sleep 0.01', 'sh', id, ran] })));
  const w = await worker('crash', 'W', ['-j', '2']);
  try {
    const first = coordinator(file, 'crash', d);
    await waitFor('some jobs logged', () => lines(join(d, 'log')).length >= 30);
    first.child.kill('SIGKILL');
    await first.exit();
    const before = lines(join(d, 'log')).length;
    // The workers go on without a coordinator.
    await waitFor('more jobs run', () => lines(ran).length > before + 30);
    const resumed = coordinator(file, 'crash', d, ['--resume']);
    assert.is(await resumed.exit(), 0, resumed.stderr);
    const log = jsonLines(join(d, 'log'));
    assert.is(log.length, 300);
    assert.equal(log.map((r) => r.id).sort(), [...ids].sort());
    assert.ok(new Set(lines(ran)).size === 300);
    assert.equal(await leftInRedis('crash'), EMPTY);
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
});

rtest(test, 'a job that kills every worker it lands on ends as ELOST after --max-lost starts', async () => {
  const d = dir();
  const starts = join(d, 'starts');
  const file = jobFile(d, [{ id: 'killer', argv: ['/bin/sh', '-c', 'echo x >> "$1"; kill -9 $PPID; sleep 60', 'sh', starts] }, { id: 'fine', argv: ['/bin/true'] }]);
  const run = coordinator(file, 'lost', d);
  let deaths = 0;
  while (run.code === undefined) {
    // Not waited for: it may take the job, and die of it, before it says it runs.
    const w = proc(['worker', '--queue', redis.server.url, '--batch', 'lost', '--lease', LEASE, '--name', `W${deaths}`, '--max-lost', '2']);
    const code = await Promise.race([w.exited, run.exited.then(() => 'done')]);
    if (code === 'done') {
      w.child.kill('SIGTERM');
      await w.exit();
      break;
    }
    assert.is(code, 'SIGKILL', w.stderr);
    deaths++;
    assert.ok(deaths <= 2, 'started past --max-lost');
  }
  assert.is(await run.exit(), 1, run.stderr);
  assert.is(deaths, 2);
  assert.is(lines(starts).length, 2);
  const byId = Object.fromEntries(jsonLines(join(d, 'log')).map((r) => [r.id, r]));
  assert.equal([byId.killer.ok, byId.killer.code, byId.fine.ok], [false, 'ELOST', true]);
  assert.match(run.stderr, 'job killer: ELOST: job killer was lost 2 times');
});

rtest(test, '--max-output: a result keeps the first bytes of each stream and records how many there were; the job is not killed for it', async () => {
  const d = dir();
  const file = jobFile(d, [{ id: 'loud', argv: ['/bin/sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" a; head -c 5000 /dev/zero | tr "\\0" b >&2; exit 3'] }]);
  const w = await worker('loud', 'W');
  try {
    const run = coordinator(file, 'loud', d, ['--max-output', '1000', '--capture', '--results', join(d, 'results')]);
    assert.is(await run.exit(), 1, run.stderr);
    const [r] = jsonLines(join(d, 'results'));
    assert.equal([r.status, r.code, r.stdout, r.stderr, r.truncated], [3, 'EEXIT', 'a'.repeat(1000), 'b'.repeat(1000), { stdout: 100000, stderr: 5000 }]);
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
});

rtest(test, 'a worker given no batch runs every batch not yet finished, -j across them; status without a batch lists them', async () => {
  const d1 = dir();
  const d2 = dir();
  const trace = join(d1, 'trace');
  const slow = (id) => ({ id, argv: ['/bin/sh', '-c', 'echo + >> "$1"; sleep 0.2; echo - >> "$1"', 'sh', trace] });
  const first = coordinator(jobFile(d1, Array.from({ length: 6 }, (_, i) => slow(`x${i}`))), 'any-one', d1);
  const second = coordinator(jobFile(d2, Array.from({ length: 6 }, (_, i) => slow(`y${i}`))), 'any-two', d2);
  await waitFor('both batches to be submitted', () => first.stderr.includes('no workers yet') && second.stderr.includes('no workers yet'));
  const status = proc(['status', '--queue', redis.server.url]);
  assert.is(await status.exit(), 0, status.stderr);
  assert.match(status.stdout, 'batch any-one on');
  assert.match(status.stdout, 'batch any-two on');
  const w = proc(['worker', '--queue', redis.server.url, '-j', '2', '--lease', LEASE, '--name', 'ANY']);
  try {
    assert.is(await first.exit(), 0, first.stderr);
    assert.is(await second.exit(), 0, second.stderr);
    assert.match(w.stderr, 'ANY: running every batch');
    assert.equal(jsonLines(join(d1, 'log')).map((r) => r.host), Array(6).fill('ANY'));
    assert.equal(jsonLines(join(d2, 'log')).map((r) => r.host), Array(6).fill('ANY'));
    let now = 0;
    let most = 0;
    for (const mark of lines(trace)) most = Math.max(most, (now += mark === '+' ? 1 : -1));
    assert.is(most, 2, 'jobs running at once across the two batches');
    // Finished batches leave the list.
    const after = proc(['status', '--queue', redis.server.url]);
    assert.is(await after.exit(), 0);
    assert.not.match(after.stdout, 'any-one');
    assert.not.match(after.stdout, 'any-two');
  } finally {
    w.child.kill('SIGTERM');
    assert.is(await w.exit(), 130, w.stderr);
  }
});

rtest(test, 'submit enqueues a template\'s jobs and exits; run --resume with the same template collects them; no more than --window jobs wait unlogged', async () => {
  const d = dir();
  const template = ['--', '/bin/echo', 'got', '{}', ':::', 'a', 'b:c', 'ü'];
  const submit = proc(['submit', '--queue', redis.server.url, '--batch', 'tpl', ...template]);
  assert.is(await submit.exit(), 0, submit.stderr);
  assert.match(submit.stderr, 'batch tpl: 3 jobs submitted');
  assert.equal((await leftInRedis('tpl')).waiting, 3);
  const w = await worker('tpl', 'W');
  try {
    const run = proc(['run', '--queue', redis.server.url, '--batch', 'tpl', '--joblog', join(d, 'log'), '--resume', '--tag', ...template]);
    assert.is(await run.exit(), 0, run.stderr);
    assert.equal(run.stdout.split('\n').filter(Boolean).sort(), ['a\tgot a', 'b:c\tgot b:c', 'ü\tgot ü']);
    assert.equal(jsonLines(join(d, 'log')).map((r) => r.id).sort(), ['1', '2', '3']);
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
  // No worker: the coordinator submits up to the window and waits.
  const jobs = Array.from({ length: 40 }, (_, i) => ({ id: `win${i}`, argv: ['/bin/true'] }));
  const windowed = coordinator(jobFile(d, jobs), 'win', d, ['--window', '5']);
  await waitFor('the first jobs submitted', () => windowed.stderr.includes('no workers yet'));
  await waitFor('five waiting', async () => (await leftInRedis('win')).waiting === 5);
  const late = await worker('win', 'L');
  try {
    assert.is(await windowed.exit(), 0, windowed.stderr);
    assert.equal(jsonLines(join(d, 'log')).filter((r) => r.id.startsWith('win')).length, 40);
  } finally {
    late.child.kill('SIGTERM');
    await late.exit();
  }
});

rtest(test, '--retries and --timeout mean what they mean locally: a job that fails once then succeeds is logged once with 2 attempts; a slow one ends ETIMEDOUT', async () => {
  const d = dir();
  const marker = join(d, 'once');
  const file = jobFile(d, [
    { id: 'flaky', argv: ['/bin/sh', '-c', '[ -e "$1" ] && exit 0; : > "$1"; exit 7', 'sh', marker] },
    { id: 'slow', argv: ['/bin/sleep', '30'] },
  ]);
  const w = await worker('retry', 'W', ['-j', '2']);
  try {
    const run = coordinator(file, 'retry', d, ['--retries', '1', '--timeout', '300ms']);
    assert.is(await run.exit(), 1, run.stderr);
    const byId = Object.fromEntries(jsonLines(join(d, 'log')).map((r) => [r.id, r]));
    assert.equal([byId.flaky.ok, byId.flaky.attempts, byId.flaky.starts], [true, 2, 1]);
    assert.equal([byId.slow.ok, byId.slow.code, byId.slow.attempts], [false, 'ETIMEDOUT', 2]);
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
});

rtest(test, 'a worker cut off from Redis aborts the job whose lock it cannot renew; another worker runs it, and it is logged once', async () => {
  const d = dir();
  const pids = join(d, 'pids');
  const marker = join(d, 'marker');
  // The worker reaches Redis through this proxy; cut, it forwards nothing and closes nothing.
  const proxyPath = join(d, 'proxy.sock');
  let cut = false;
  const pairs = [];
  const proxy = net.createServer((down) => {
    const up = net.connect(redis.server.socket);
    pairs.push(down, up);
    down.on('data', (b) => cut || up.write(b));
    up.on('data', (b) => cut || down.write(b));
    for (const [a, b] of [[down, up], [up, down]]) {
      a.on('error', () => undefined);
      a.on('close', () => b.destroy());
    }
  });
  await new Promise((resolve) => proxy.listen(proxyPath, resolve));
  const file = jobFile(d, [{ id: 'cut', argv: ['/bin/sh', '-c', 'echo $$ >> "$1"; [ -e "$2" ] && exit 0; : > "$2"; exec sleep 60', 'sh', pids, marker] }]);
  const a = proc(['worker', '--queue', `unix://${proxyPath}`, '--batch', 'cut', '--lease', LEASE, '--name', 'A']);
  let b;
  try {
    await waitFor('worker A to start', () => a.stderr.includes('running batch'));
    const run = coordinator(file, 'cut', d);
    await waitFor('the job to start on A', () => lines(pids).length === 1);
    cut = true;
    const child = Number(lines(pids)[0]);
    await waitFor('A to abort the job it can no longer hold', () => !existsSync(`/proc/${child}`));
    assert.is(a.code, undefined, 'worker A is still running');
    b = await worker('cut', 'B');
    assert.is(await run.exit(), 0, run.stderr);
    const log = jsonLines(join(d, 'log'));
    assert.equal(log.map((r) => [r.id, r.ok, r.host]), [['cut', true, 'B']]);
  } finally {
    a.child.kill('SIGKILL');
    await a.exit();
    if (b !== undefined) {
      b.child.kill('SIGTERM');
      await b.exit();
    }
    for (const s of pairs) s.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  }
});

const asRoot = process.getuid() === 0 || !ONCE ? rtest : (t, name) => {
  console.log(`  skipped (needs root): ${name}`);
  return t.skip(name);
};
asRoot(test, '--as-user runs every job as that user; a root worker without --as-user or --allow warns', async () => {
  const d = dir();
  const file = jobFile(d, [{ id: 'who', argv: ['/usr/bin/id', '-u'] }]);
  const bare = await worker('asuser', 'root-bare');
  bare.child.kill('SIGTERM');
  await bare.exit();
  assert.match(bare.stderr, 'WARNING: running as root with neither --as-user nor --allow');
  const w = await worker('asuser', 'W', ['--as-user', 'nobody']);
  try {
    assert.not.match(w.stderr, 'WARNING');
    const run = coordinator(file, 'asuser', d, ['--capture', '--results', join(d, 'results')]);
    assert.is(await run.exit(), 0, run.stderr);
    const [r] = jsonLines(join(d, 'results'));
    const nobody = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:')).split(':')[2];
    assert.is(r.stdout, `${nobody}\n`);
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
});

rtest(test, '--halt soon,fail=1: no new jobs start, the waiting ones are removed unlogged, and --resume runs the rest', async () => {
  const d = dir();
  const jobs = [{ id: 'bad', argv: ['/bin/false'] }, ...Array.from({ length: 30 }, (_, i) => ({ id: `h${i}`, argv: ['/bin/sleep', '0.05'] }))];
  const file = jobFile(d, jobs);
  const w = await worker('halt', 'W');
  try {
    const run = coordinator(file, 'halt', d, ['--halt', 'soon,fail=1']);
    assert.is(await run.exit(), 1, run.stderr);
    assert.match(run.stderr, '--halt soon,fail=1: 1 failed; no new jobs');
    const logged = lines(join(d, 'log')).length;
    assert.ok(logged < jobs.length, `${logged} logged`);
    assert.equal(await leftInRedis('halt'), EMPTY);
    const resumed = coordinator(file, 'halt', d, ['--resume']);
    assert.is(await resumed.exit(), 1, resumed.stderr);
    const log = jsonLines(join(d, 'log'));
    assert.equal(log.map((r) => r.id).sort(), jobs.map((j) => j.id).sort());
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
});

rtest(test, 'SIGINT on the coordinator: the running jobs are aborted and put back, exit 130; --resume runs what was left, each job logged once', async () => {
  const d = dir();
  const jobs = Array.from({ length: 20 }, (_, i) => ({ id: `s${i}`, argv: ['/bin/sleep', '0.3'] }));
  const file = jobFile(d, jobs);
  const w = await worker('sigint', 'W', ['-j', '2']);
  try {
    const run = coordinator(file, 'sigint', d);
    await waitFor('a few jobs logged', () => lines(join(d, 'log')).length >= 3);
    run.child.kill('SIGINT');
    assert.is(await run.exit(), 130, run.stderr);
    assert.match(run.stderr, 'SIGINT: no new jobs; the running ones go back to the queue');
    assert.equal(await leftInRedis('sigint'), EMPTY);
    assert.is(w.code, undefined, 'the worker goes on');
    const resumed = coordinator(file, 'sigint', d, ['--resume']);
    assert.is(await resumed.exit(), 0, resumed.stderr);
    const log = jsonLines(join(d, 'log'));
    assert.equal(log.map((r) => r.id).sort(), jobs.map((j) => j.id).sort());
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
});

rtest(test, 'a Redis with ACL users: user:password in the URL or in SPAWNPOOL_QUEUE runs the batch; a wrong password is refused; the password is never printed', async () => {
  const secret = `pw-${randomBytes(6).toString('hex')}`;
  // No default user: nothing runs without AUTH as alice.
  const locked = await startRedis(['--user', 'default', 'off', '--user', 'alice', 'on', `>${secret}`, '~*', '&*', '+@all'],
    { username: 'alice', password: secret });
  const url = `unix://alice:${encodeURIComponent(secret)}@localhost${locked.socket}`;
  try {
    const d = dir();
    const jobs = Array.from({ length: 20 }, (_, i) => ({ id: `a${i}`, argv: ['/bin/sh', '-c', `exit ${i % 2}`] }));
    const file = jobFile(d, jobs);
    // The worker's URL on its command line; the coordinator's in the environment only.
    const w = proc(['worker', '--queue', url, '--batch', 'acl', '--lease', LEASE, '--name', 'acl-w']);
    await waitFor('the worker to start', () => w.stderr.includes('running batch') || w.code !== undefined);
    const run = proc(['run', file, '--batch', 'acl', '--joblog', join(d, 'log')], { env: { SPAWNPOOL_QUEUE: url } });
    assert.is(await run.exit(), 1, run.stderr);   // half the jobs exit 1
    const logged = jsonLines(join(d, 'log'));
    assert.equal(logged.map((r) => r.id).sort(), jobs.map((j) => j.id).sort());
    assert.equal(logged.filter((r) => r.ok).length, 10);
    w.child.kill('SIGTERM');
    assert.is(await w.exit(), 130);
    // A wrong password: refused (exit 4), and neither password shows.
    const wrong = `unix://alice:not-${secret}@localhost${locked.socket}`;
    const bad = proc(['run', file, '--queue', wrong, '--batch', 'acl2', '--joblog', join(d, 'log2')]);
    assert.is(await bad.exit(), 4, bad.stderr);
    assert.match(bad.stderr, /WRONGPASS|invalid username-password/i);
    for (const p of [w, run, bad]) {
      assert.not.match(p.stdout + p.stderr, secret, 'a password was printed');
    }
    assert.match(w.stderr, 'alice:***@');
  } finally {
    await locked.stop();
  }
});

rtest(test, 'a Redis that may evict keys is refused by the coordinator and the worker', async () => {
  const evicting = await startRedis(['--maxmemory-policy', 'allkeys-lru']);
  try {
    const d = dir();
    const file = jobFile(d, [{ id: 'x', argv: ['/bin/true'] }]);
    const run = proc(['run', file, '--queue', evicting.url, '--batch', 'evict', '--joblog', join(d, 'log')]);
    assert.is(await run.exit(), 4);
    assert.match(run.stderr, 'has maxmemory-policy allkeys-lru: it may evict jobs');
    const w = proc(['worker', '--queue', evicting.url, '--batch', 'evict']);
    assert.is(await w.exit(), 4);
    assert.match(w.stderr, 'spawnpool needs noeviction');
  } finally {
    await evicting.stop();
  }
});

rtest(test, 'signed batches: a forged job (written straight into Redis under a real job\'s id) is logged EBADSIG and never run; a program off --allow is EPERM; --resume-failed runs the real one', async () => {
  const d = dir();
  const keyFile = join(d, 'key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'));
  chmodSync(keyFile, 0o600);
  const pwned = join(d, 'pwned');
  const file = jobFile(d, [{ id: 'real', argv: ['/bin/true'] }, { id: 'off-list', argv: ['/usr/bin/env', 'true'] }]);
  // Takes the real job's queue id first: BullMQ then ignores the honest one.
  const queue = new Queue('sp-signed', { connection: { path: redis.server.socket } });
  await queue.add('run', { v: 1, line: 1, batch: 'signed', id: 'real', argv: ['/bin/sh', '-c', `: > ${pwned}`], sig: 'ab'.repeat(32) }, { jobId: 'jreal', removeOnComplete: true });
  await queue.close();
  const w = await worker('signed', 'W', ['--key-file', keyFile, '--allow', '/bin/true']);
  try {
    const run = coordinator(file, 'signed', d, ['--key-file', keyFile]);
    assert.is(await run.exit(), 1, run.stderr);
    const byId = Object.fromEntries(jsonLines(join(d, 'log')).map((r) => [r.id, r]));
    assert.equal([byId.real.ok, byId.real.code], [false, 'EBADSIG']);
    assert.equal([byId['off-list'].ok, byId['off-list'].code], [false, 'EPERM']);
    assert.is(existsSync(pwned), false);
    const again = coordinator(file, 'signed', d, ['--key-file', keyFile, '--resume-failed']);
    assert.is(await again.exit(), 1, again.stderr);
    const last = jsonLines(join(d, 'log')).filter((r) => r.id === 'real').at(-1);
    assert.equal([last.ok, last.code], [true, null]);
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
});

rtest(test, 'status shows the coordinator, the workers and the oldest running job; cancel aborts it, removes the waiting ones, and stops the coordinator', async () => {
  const d = dir();
  const pids = join(d, 'pids');
  const jobs = [{ id: 'long', argv: ['/bin/sh', '-c', 'echo $$ >> "$1"; exec sleep 60', 'sh', pids] }, ...Array.from({ length: 5 }, (_, i) => ({ id: `w${i}`, argv: ['/bin/true'] }))];
  const w = await worker('cancel', 'W');
  try {
    const run = coordinator(jobFile(d, jobs), 'cancel', d);
    await waitFor('the long job to start', () => lines(pids).length === 1);
    // The worker's heartbeat says it runs one once it has beaten since the start.
    let status;
    await waitFor('a heartbeat with the job running', async () => {
      status = proc(['status', '--queue', redis.server.url, '--batch', 'cancel']);
      assert.is(await status.exit(), 0, status.stderr);
      return status.stdout.includes('W: 1/1 running');
    });
    assert.match(status.stdout, '1 running');
    assert.match(status.stdout, '5 waiting');
    assert.match(status.stdout, /coordinator: [^:\n]+:\d+/);
    assert.match(status.stdout, 'workers seen: 1');
    assert.match(status.stdout, 'W: 1/1 running');
    assert.match(status.stdout, 'oldest running job: long, for');
    const cancel = proc(['cancel', '--queue', redis.server.url, '--batch', 'cancel']);
    assert.is(await cancel.exit(), 0, cancel.stderr);
    assert.match(cancel.stderr, '1 running jobs aborted, 6 waiting removed');
    assert.is(await run.exit(), 4, run.stderr);
    assert.match(run.stderr, 'was paused (spawnpool cancel?)');
    const child = Number(lines(pids)[0]);
    await waitFor('the aborted job to be reaped', () => !existsSync(`/proc/${child}`));
    const after = await leftInRedis('cancel');
    assert.equal([after.waiting, after.active], [0, 0]);
    assert.is(lines(join(d, 'log')).length, 0);
  } finally {
    w.child.kill('SIGTERM');
    await w.exit();
  }
});

test.run();
