#!/usr/bin/env node
// The soak of issue 12 at its full size: 100 000 mixed runs on one pool
// (test/faults/soak.mjs), per engine: RSS, descriptors and threads after the
// first 10 000 runs and at the end. `node bench/soak.mjs [-n N]`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeMachine, machine } from './lib.mjs';

const at = process.argv.indexOf('-n');
const n = at === -1 ? 100_000 : Number(process.argv[at + 1]);
const soak = fileURLToPath(new URL('../test/faults/soak.mjs', import.meta.url));
const MiB = 2 ** 20;
const rows = [];
for (const engine of ['native', 'node']) {
  const t0 = performance.now();
  const res = spawnSync(process.execPath, [soak, String(n), engine], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${engine}: ${res.stderr}`);
  const r = JSON.parse(res.stdout);
  const grew = (r.last.rss - r.first.rss) / MiB;
  rows.push(`| ${engine} | ${n} | ${((performance.now() - t0) / 1000).toFixed(0)} | ${(r.first.rss / MiB).toFixed(1)} | ${(r.last.rss / MiB).toFixed(1)} | ` +
    `${grew.toFixed(1)} ${grew < 25 ? 'MET' : 'MISSED'} | ${r.first.fds} → ${r.last.fds} | ${r.first.threads} → ${r.last.threads} | ` +
    `${Object.entries(r.ended).map(([k, v]) => `${k} ${v}`).join(', ')} |`);
}
console.log(`## soak: ${n} mixed runs on one pool\n\n\`node bench/soak.mjs${at === -1 ? '' : ` -n ${n}`}\`\n\nMachine: ${describeMachine(machine())}.\n`);
console.log('| engine | runs | s | RSS after 10 000 MiB | RSS at the end MiB | growth MiB (< 25) | fds | threads | ended |');
console.log('|---|---:|---:|---:|---:|---:|---|---|---|');
console.log(rows.join('\n'));
