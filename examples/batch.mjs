// A small batch through spawnpool: captured output, fed input, a clean env,
// exit statuses, a timeout and a missing binary, all on one pool.
import { Command, SpawnPool, CommandError } from '../dist/index.js';

const pool = new SpawnPool();
const jobs = [
  ['uname', new Command('uname', '-sr').captureOutput()],
  ['sort', new Command('sort').inputBuffer('pear\napple\nfig\n').captureOutput()],
  ['env', new Command('env').envClear().envPair('GREETING', 'hello').captureOutput()],
  ['status', new Command('sh', '-c', 'exit 3')],
  ['stderr', new Command('sh', '-c', 'echo "disk full" >&2; exit 1')],
  ['timeout', new Command('sleep', '5'), { timeoutMs: 100 }],
  ['missing', new Command('no-such-program-here')],
];

const started = performance.now();
const results = await Promise.all(jobs.map(async ([name, cmd, opts]) => {
  try {
    const r = await cmd.run({ pool, ...opts });
    return `${name.padEnd(8)} ok     ${JSON.stringify(r.stdout ?? '')}`;
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    return `${name.padEnd(8)} ${err.code.padEnd(6)} ${err.message}`;
  }
}));
console.log(results.join('\n'));
console.log(`\n${jobs.length} commands in ${(performance.now() - started).toFixed(0)} ms; pool stats:`, pool.stats());
await pool.close();
