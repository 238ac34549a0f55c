// The exec helper's extra cost per spawn (issue 4): /bin/true started by the
// addon directly (the vfork child execs it) against /bin/true started through
// dist/native/spawnpool-exec-helper (the vfork child execs the helper, which
// parses its options, closes fds and execs /bin/true), both reaped through the
// pidfd. Also, through the public API, runAsync() + wait() against the same
// with requireHandshake() (helper + the handshake round trip over the run's
// control port). Rounds alternate the contenders; medians are printed.
//
//   node build.mjs && node bench/exec-helper-cost.mjs [-n 2000] [-c 8] [--rounds 5]
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('-n', 2000);
const C = arg('-c', 8);
const ROUNDS = arg('--rounds', 5);
const dist = new URL('../dist/', import.meta.url);
const addon = createRequire(import.meta.url)(fileURLToPath(new URL('native/spawnpool_native.node', dist)));
const HELPER = fileURLToPath(new URL('native/spawnpool-exec-helper', dist));
const { Command, SpawnPool } = await import(new URL('index.js', dist).href);

/** N spawns, C in flight, each reaped; µs per spawn. */
async function storm(spawnOne) {
  let started = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (started < N) {
      started++;
      await spawnOne();
    }
  };
  await Promise.all(Array.from({ length: C }, lane));
  return ((performance.now() - t0) * 1000) / N;
}

function viaAddon(file, argv, keep = []) {
  const c = addon.spawn(file, argv, [], null, [-1, -1, -1], keep, { pdeathsig: 9 });
  return new Promise((resolve, reject) => addon.watch(c.pidfd, (s) => (s === 0 ? resolve() : reject(new Error(`status ${s}`)))));
}

const contenders = {
  'addon: /bin/true': () => viaAddon('/bin/true', ['true']),
  'addon: helper -> /bin/true': () => {
    const [r, w] = addon.pipe();
    const p = viaAddon(HELPER, [HELPER, '--status-fd', String(w), '--', '/bin/true', 'true'], [w]);
    addon.closeFd(w);
    return p.finally(() => addon.closeFd(r));
  },
};

const pool = new SpawnPool({ threads: 1, engine: 'native' });
const api = {
  'API runAsync+wait': async () => (await new Command('/bin/true').runAsync({ pool })).wait(),
  'API + requireHandshake': async () => {
    const h = await new Command('/bin/true').requireHandshake().runAsync({ pool });
    await h.handshakeWait();
    await h.handshakeNotify();
    return h.wait();
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {};
for (const set of [contenders, api]) {
  for (const fn of Object.values(set)) await storm(fn); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(set)) (results[name] ??= []).push(await storm(fn));
  }
}
await pool.destroy();

console.log(`${N} spawns × ${ROUNDS} rounds, ${C} in flight, one thread; µs per spawn (median of rounds)`);
for (const [name, xs] of Object.entries(results)) console.log(`  ${name.padEnd(30)} ${median(xs).toFixed(1)}  [${xs.map((x) => x.toFixed(0)).join(' ')}]`);
const extra = median(results['addon: helper -> /bin/true']) - median(results['addon: /bin/true']);
const extraApi = median(results['API + requireHandshake']) - median(results['API runAsync+wait']);
console.log(`exec helper extra cost: ${extra.toFixed(1)} µs per spawn (addon level); with the handshake round trip through the API: ${extraApi.toFixed(1)} µs`);
