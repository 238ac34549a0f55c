// Batch runners side by side: N `/bin/true` jobs, 2 at a time, through
// `spawnpool run -j 2`, GNU parallel -j 2 and xargs -P 2. Each runner is a
// whole process, timed wall-clock from spawn to exit; the rounds interleave
// the runners so that the machine's noise falls on all of them alike.
//
//   node bench/batch-runners.mjs [-n 5000] [-j 2] [--rounds 3] [--dist DIR]
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: {
  n: { type: 'string', default: '5000' }, j: { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' },
  // A copy of dist/ (so a rebuild during the run cannot disturb it).
  dist: { type: 'string' },
} });
const n = Number(values.n);
const j = values.j;
const rounds = Number(values.rounds);
const cli = values.dist ? join(values.dist, 'cli.js') : fileURLToPath(new URL('../dist/cli.js', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'spawnpool-batch-bench-'));
const jsonl = join(dir, 'jobs.jsonl');
const plain = join(dir, 'jobs.txt');
writeFileSync(jsonl, '["/bin/true"]\n'.repeat(n));
// One argument per line for parallel and xargs: `true x`, as cheap as `true`.
writeFileSync(plain, 'x\n'.repeat(n));

const runners = {
  'spawnpool run': { file: process.execPath, args: [cli, 'run', jsonl, '-j', j], input: null },
  'GNU parallel': { file: 'parallel', args: ['--will-cite', '-j', j, '/bin/true'], input: plain },
  'xargs -P': { file: 'xargs', args: ['-P', j, '-n', '1', '/bin/true'], input: plain },
};

function time({ file, args, input }) {
  return new Promise((resolve, reject) => {
    const stdin = input ? openSync(input, 'r') : 'ignore';
    const t0 = process.hrtime.bigint();
    const child = spawn(file, args, { stdio: [stdin, 'ignore', 'inherit'] });
    if (typeof stdin === 'number') closeSync(stdin);
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${file} exited ${code}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e9);
    });
  });
}

const seconds = Object.fromEntries(Object.keys(runners).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, runner] of Object.entries(runners)) seconds[name].push(await time(runner));
}
rmSync(dir, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = Object.fromEntries(Object.entries(seconds).map(([k, xs]) => [k, n / median(xs)]));
console.log(`${n} x /bin/true, ${j} at a time, ${rounds} rounds interleaved; ${cpus().length} x ${cpus()[0].model}; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('| runner | median wall s | jobs/s | spawnpool ÷ this |');
console.log('|---|---|---|---|');
for (const [name, xs] of Object.entries(seconds)) {
  console.log(`| ${name} | ${median(xs).toFixed(2)} (${xs.map((x) => x.toFixed(2)).join(', ')}) | ${rate[name].toFixed(0)} | ${(rate['spawnpool run'] / rate[name]).toFixed(2)}x |`);
}
