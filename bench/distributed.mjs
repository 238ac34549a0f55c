#!/usr/bin/env node
// A batch on one machine against the same batch through Redis: N /bin/true
// jobs by `spawnpool run -j J` (local), then by `spawnpool run --queue` with
// one and with two `spawnpool worker -j J` processes on this machine, and the
// CPU each side spends per job (the coordinator, the workers with the jobs
// they reap, redis-server). Then the recovery time after a worker holding a
// job is SIGKILLed at the default lease: from the kill to the job's start on
// the other worker. The rounds interleave the set-ups; medians.
// `node bench/distributed.mjs --help` for the options.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { describeMachine, distDir, fmt, loadAverage, machine, median, parseArgs, sharedOptions, table } from './lib.mjs';

const usage = `usage: node bench/distributed.mjs [options]

  -n, --jobs N          /bin/true jobs per batch (default 20000; --quick 2000)
  -j, --parallel J      jobs at a time: local -j, and each worker's -j (default 8)
      --rounds R        rounds of the three set-ups (default 3; --quick 1)
      --recoveries K    worker SIGKILLs timed at the default lease (default 3; --quick 1; 0: none)
      --quick           small and fast, for development
      --json FILE       also write every number as JSON
      --dist DIR        the spawnpool build to use (its cli.js; default ../dist)
`;
const opts = parseArgs(process.argv.slice(2), {
  jobs: { type: 'number', short: 'n' },
  parallel: { type: 'number', short: 'j' },
  rounds: 'number',
  recoveries: 'number',
  ...sharedOptions('quick', 'json', 'dist'),
}, usage);
const quick = opts.quick ?? false;
const n = opts.jobs ?? (quick ? 2000 : 20000);
const j = opts.parallel ?? 8;
const rounds = Math.max(1, opts.rounds ?? (quick ? 1 : 3));
const recoveries = opts.recoveries ?? (quick ? 1 : 3);
const cli = join(distDir(opts), 'cli.js');
const log = (...a) => console.error(...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // USER_HZ, as /proc reports CPU times

const dir = mkdtempSync(join(tmpdir(), 'spawnpool-dist-bench-'));
const jobs = join(dir, 'jobs.jsonl');
writeFileSync(jobs, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `t${i}`, argv: ['/bin/true'] })).join('\n') + '\n');

/** CPU seconds of a process and of the children it reaped: /proc/PID/stat utime stime cutime cstime. */
function cpuOf(pid = 'self') {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { own: (Number(f[11]) + Number(f[12])) / TICK, reaped: (Number(f[13]) + Number(f[14])) / TICK };
}

function startRedis() {
  const socket = join(dir, 'redis.sock');
  const child = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  return { child, socket, url: `unix://${socket}` };
}

async function redisCpu(client) {
  const info = await client.info('cpu');
  const v = (k) => Number(new RegExp(`^${k}:(\\S+)`, 'm').exec(info)[1]);
  return v('used_cpu_user') + v('used_cpu_sys');
}

function proc(args) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

async function startWorker(url, batch, name, extra = []) {
  const w = proc(['worker', '--queue', url, '--batch', batch, '-j', String(j), '--name', name, ...extra]);
  while (!w.stderr().includes('running batch')) {
    if (w.child.exitCode !== null) throw new Error(`worker ${name}: ${w.stderr()}`);
    await sleep(20);
  }
  return w;
}

/** One batch: wall seconds, and CPU ms per job of each side. */
async function local(round) {
  const before = cpuOf();
  const t0 = performance.now();
  const run = proc(['run', '-j', String(j), jobs, '--joblog', join(dir, `local-${round}.log`)]);
  const code = await run.exited;
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`local run: ${run.stderr()}`);
  const after = cpuOf();
  return { wall, runnerMs: ((after.reaped - before.reaped) * 1000) / n };
}

async function queued(url, client, workers, round) {
  const batch = `b${workers}-${round}`;
  const ws = [];
  for (let i = 0; i < workers; i++) ws.push(await startWorker(url, batch, `w${i}`));
  await sleep(500);
  const wBefore = ws.map((w) => cpuOf(w.child.pid));
  const before = cpuOf();
  const rBefore = await redisCpu(client);
  const t0 = performance.now();
  const run = proc(['run', jobs, '--queue', url, '--batch', batch, '--joblog', join(dir, `${batch}.log`)]);
  const code = await run.exited;
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`coordinator: ${run.stderr()}`);
  const after = cpuOf();
  const rAfter = await redisCpu(client);
  const wAfter = ws.map((w) => cpuOf(w.child.pid));
  for (const w of ws) w.child.kill('SIGTERM');
  await Promise.all(ws.map((w) => w.exited));
  const workerCpu = wAfter.reduce((s, a, i) => s + a.own - wBefore[i].own, 0);
  const jobCpu = wAfter.reduce((s, a, i) => s + a.reaped - wBefore[i].reaped, 0);
  return {
    wall,
    coordinatorMs: ((after.reaped - before.reaped) * 1000) / n,
    workersMs: (workerCpu * 1000) / n,
    jobsMs: (jobCpu * 1000) / n,
    redisMs: ((rAfter - rBefore) * 1000) / n,
  };
}

/** A job held by worker A; A SIGKILLed; seconds until worker B starts it again (default lease). */
async function recovery(url, k) {
  const batch = `rec${k}`;
  const starts = join(dir, `${batch}.starts`);
  const marker = join(dir, `${batch}.marker`);
  const file = join(dir, `${batch}.jsonl`);
  writeFileSync(file, `${JSON.stringify({ id: 'held', argv: ['/bin/sh', '-c', 'echo x >> "$1"; [ -e "$2" ] && exit 0; : > "$2"; exec sleep 600', 'sh', starts, marker] })}\n`);
  const a = await startWorker(url, batch, 'A');
  const run = proc(['run', file, '--queue', url, '--batch', batch, '--joblog', join(dir, `${batch}.log`)]);
  while (!existsSync(marker)) await sleep(10);
  const b = await startWorker(url, batch, 'B');
  a.child.kill('SIGKILL');
  const killed = performance.now();
  while ((existsSync(starts) ? readFileSync(starts, 'utf8').split('\n').filter(Boolean).length : 0) < 2) await sleep(10);
  const seconds = (performance.now() - killed) / 1000;
  await run.exited;
  b.child.kill('SIGTERM');
  await b.exited;
  return seconds;
}

const m = machine();
log(describeMachine(m));
const redis = startRedis();
let client;
for (let i = 0; ; i++) {
  try {
    client = new Redis({ path: redis.socket, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    await client.connect();
    break;
  } catch {
    if (i > 200) throw new Error('redis-server did not start');
    await sleep(20);
  }
}
const server = (await client.info('server')).match(/^redis_version:(\S+)/m)[1];

const rows = { local: [], one: [], two: [] };
try {
  for (let r = 0; r < rounds; r++) {
    log(`round ${r + 1}/${rounds}: local -j ${j}`);
    rows.local.push(await local(r));
    log(`round ${r + 1}/${rounds}: --queue, one worker`);
    rows.one.push(await queued(redis.url, client, 1, r));
    log(`round ${r + 1}/${rounds}: --queue, two workers`);
    rows.two.push(await queued(redis.url, client, 2, r));
  }
  const rec = [];
  for (let k = 0; k < recoveries; k++) {
    log(`recovery ${k + 1}/${recoveries}`);
    rec.push(await recovery(redis.url, k));
  }

  const med = (list, key) => median(list.map((x) => x[key]));
  const localWall = med(rows.local, 'wall');
  const line = (name, list) => {
    const wall = med(list, 'wall');
    return [name, fmt(n / wall, 0), fmt(localWall / wall, 2), fmt(list[0].coordinatorMs === undefined ? med(list, 'runnerMs') : med(list, 'coordinatorMs'), 3),
      list[0].workersMs === undefined ? '—' : fmt(med(list, 'workersMs'), 3),
      list[0].redisMs === undefined ? '—' : fmt(med(list, 'redisMs'), 3),
      list[0].jobsMs === undefined ? '—' : fmt(med(list, 'jobsMs'), 3)];
  };
  const out = [
    `Machine: ${describeMachine(m)}; redis-server ${server} on a Unix socket; load before: ${loadAverage()}.`,
    '',
    `${n} \`/bin/true\` jobs, -j ${j} (local, and each worker), median of ${rounds} round(s). CPU per job from /proc: the runner or coordinator, ` +
      'the workers themselves, redis-server (INFO cpu), and the jobs the workers reaped. The local row\'s runner CPU includes its jobs.',
    '',
    table(['set-up', 'jobs/s', '× local', 'runner/coordinator CPU ms/job', 'workers CPU ms/job', 'redis CPU ms/job', 'jobs CPU ms/job'], [
      ['local `spawnpool run -j ' + j + '`', ...line('', rows.local).slice(1)],
      line('`--queue`, one worker', rows.one),
      line('`--queue`, two workers', rows.two),
    ]),
    '',
    recoveries > 0 ? `Recovery after a worker holding a job is SIGKILLed, default lease (10 s): ${rec.map((s) => `${fmt(s, 1)} s`).join(', ')} from the kill to the job's start on the other worker.` : '',
  ].join('\n');
  console.log(out);
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ machine: m, n, j, rows, recoveries: rec }, null, 2));
} finally {
  client.disconnect();
  redis.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
