#!/usr/bin/env node
// The host's main-loop delay when commands run at a steady rate below what
// the machine can do: the latency-sensitive server case, where the spawn
// storm (bench/spawn-storm.mjs) saturates every core and measures mostly CPU
// contention. For each rate, three windows of the same length:
//   idle     nothing runs;
//   floor    another process spawns /bin/true at that rate (child_process),
//            so this loop only feels the machine being busy;
//   native   this process runs /bin/true at that rate on spawnpool's pool.
// `node bench/paced.mjs --help` for the options.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  LoopDelay, describeMachine, fmt, idleDelay, loadAverage, loadSpawnpool, machine, median, paced, parseArgs, sharedOptions, table,
} from './lib.mjs';

const usage = `usage: node bench/paced.mjs [options]

      --rates R,R      spawns per second to hold (default 50,100,150)
      --seconds S      length of each window (default 10)
      --rounds N       rounds of the three windows per rate; medians reported (default 2)
  -t, --threads N      spawnpool threads (default: cores, ${availableParallelism()})
      --dist DIR       the spawnpool build to use (default ../dist)
      --snapshot       copy the build to bench/build/dist first
`;
const opts = parseArgs(process.argv.slice(2), {
  rates: 'list',
  seconds: 'number',
  rounds: 'number',
  ...sharedOptions('threads', 'dist', 'snapshot'),
}, usage);
const rates = (opts.rates ?? ['50', '100', '150']).map(Number);
const seconds = opts.seconds ?? 10;
const rounds = Math.max(1, opts.rounds ?? 2);
const threads = opts.threads ?? availableParallelism();
const log = (...a) => console.error(...a);

// The floor window's spawner: the same pacing, in a process of its own.
const FLOOR = `
import { spawn } from 'node:child_process';
import { paced } from ${JSON.stringify(new URL('./lib.mjs', import.meta.url).href)};
const [rate, ms] = process.argv.slice(1).map(Number);
await paced(rate, ms, () => new Promise((resolve) => spawn('/bin/true', [], { stdio: 'ignore' }).on('close', resolve)));`;

async function floorWindow(rate, ms) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', FLOOR, String(rate), String(ms)], { stdio: 'ignore' });
  const d = new LoopDelay();
  d.start();
  await new Promise((resolve) => child.on('close', resolve));
  return d.stop();
}

async function nativeWindow(sp, pool, rate, ms) {
  const d = new LoopDelay();
  d.start();
  const achieved = await paced(rate, ms, () => new sp.Command('/bin/true').run({ pool }));
  return { ...d.stop(), achieved };
}

const sp = await loadSpawnpool(opts);
const pool = new sp.SpawnPool({ threads, engine: 'native' });
await Promise.all(Array.from({ length: 20 }, () => new sp.Command('/bin/true').run({ pool })));
const m = machine();
log(`paced: rates ${rates.join(', ')}/s, ${seconds} s windows, ${rounds} rounds, ${threads} threads`);
log(`machine: ${describeMachine(m)}; load ${loadAverage()}`);
const t0 = performance.now();
const rows = [];
for (const rate of rates) {
  const got = { idle: [], floor: [], native: [], achieved: [] };
  for (let r = 0; r < rounds; r++) {
    const idle = await idleDelay(seconds * 1000);
    const floor = await floorWindow(rate, seconds * 1000);
    const native = await nativeWindow(sp, pool, rate, seconds * 1000);
    log(`  ${rate}/s round ${r + 1}: idle p99 ${fmt(idle.p99, 2)}  floor p99 ${fmt(floor.p99, 2)}  native p99 ${fmt(native.p99, 2)} (max ${fmt(native.max)}, ${fmt(native.achieved, 0)}/s) ms`);
    got.idle.push(idle.p99);
    got.floor.push(floor.p99);
    got.native.push(native.p99);
    got.achieved.push(native.achieved);
  }
  const [idle, floor, native] = [median(got.idle), median(got.floor), median(got.native)];
  rows.push([`${rate}/s`, fmt(median(got.achieved), 0), fmt(idle, 2), fmt(floor, 2), fmt(native, 2),
    `${native - idle >= 0 ? '+' : ''}${fmt(native - idle, 2)}`, `${native - floor >= 0 ? '+' : ''}${fmt(native - floor, 2)}`]);
}
await pool.destroy();

const argv = process.argv.slice(2).join(' ');
console.log(`\n## paced: /bin/true at a steady rate, ${seconds} s windows, median of ${rounds}\n`);
console.log(`\`node bench/paced.mjs${argv ? ` ${argv}` : ''}\` — ${fmt((performance.now() - t0) / 1000, 0)} s; load after ${loadAverage()}\n`);
console.log(`Machine: ${describeMachine(m)}.\n`);
console.log(table(['rate', 'native ran /s', 'idle p99 ms', 'floor p99 ms (another process spawns)', 'native p99 ms', 'native − idle', 'native − floor'], rows));
