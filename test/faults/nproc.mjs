// Run by faults.test.js as an unprivileged user under a low RLIMIT_NPROC
// (prlimit): a warm pool; then processes of its own fill the limit, so no
// clone can succeed; then they end, and clones can again. One JSON line.
import { spawn } from 'node:child_process';

const { Command, SpawnPool } = await import(process.argv[2]);
const escaped = [];
process.on('uncaughtException', (e) => escaped.push(`uncaught ${e.code}: ${e.message}`));
process.on('unhandledRejection', (e) => escaped.push(`unhandled ${e?.code}: ${e?.message}`));
const pool = new SpawnPool({ threads: 1, engine: 'native' });
const commands = [new Command('/bin/true'), new Command('/bin/echo', 'x').captureOutput()];
const batch = async () => (await Promise.allSettled(Array.from({ length: 10 }, (_, i) => commands[i % 2].run({ pool }))))
  .map((r) => (r.status === 'fulfilled' ? 'ok' : `${r.reason.code}`));

const warm = await batch();
// Sleepers of this user until the kernel refuses one: the limit is reached.
const fillers = [];
for (let refused = false; !refused && fillers.length < 1000;) {
  const child = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
  refused = await new Promise((resolve) => {
    child.once('spawn', () => resolve(false));
    child.once('error', () => resolve(true));
  });
  if (!refused) fillers.push(child);
}
const limited = await batch();
await Promise.all(fillers.map((c) => new Promise((resolve) => {
  c.once('exit', resolve);
  c.kill('SIGKILL');
})));
const raised = await batch();
await pool.destroy();
console.log(JSON.stringify({ warm, fillers: fillers.length, limited, raised, escaped }));
