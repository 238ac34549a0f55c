// Run by faults.test.js under `ulimit -n`: uses up every descriptor, before
// the first run (COLD=1) or after warming the pool, runs commands, gives the
// descriptors back, runs again. Prints one JSON line; an error escaping to
// the host is reported, not thrown.
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { Command, SpawnPool } from '../../dist/index.js';

const escaped = [];
process.on('uncaughtException', (e) => escaped.push(`uncaught ${e.code}: ${e.message}`));
process.on('unhandledRejection', (e) => escaped.push(`unhandled ${e?.code}: ${e?.message}`));
const warnings = [];
process.on('warning', (w) => warnings.push(w.code ?? w.name));

const cold = process.env.COLD === '1';
const pool = new SpawnPool({ threads: 2 });
const commands = [new Command('/bin/true'), new Command('/bin/echo', 'x').captureOutput(), new Command('/bin/cat').inputBuffer('in').captureOutput().captureError()];
const codes = (results) => results.map((r) => (r.status === 'fulfilled' ? 'ok' : r.reason.code));
const batch = () => Promise.allSettled(Array.from({ length: 30 }, (_, i) => commands[i % 3].run({ pool })));

const warm = cold ? [] : codes(await batch());
const held = [];
try {
  for (;;) held.push(openSync('/dev/null', 'r'));
} catch {
  // EMFILE: every descriptor is taken.
}
const starved = codes(await batch());
for (const fd of held.splice(0)) closeSync(fd);
const recovered = codes(await batch());
// fd 3 is a pipe the test passed without close-on-exec: the child must not have it.
const sleeper = await new Command('/bin/sleep', '30').runAsync({ pool });
// A vfork child lets its parent go before exec closes its close-on-exec
// descriptors: read the table once it sleeps in sleep(1).
while (!/^\d+ \(sleep\) S /.test(readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8'))) await new Promise((r) => setTimeout(r, 5));
const childFds = readdirSync(`/proc/${sleeper.pid}/fd`).sort();
await sleeper.abort();
await pool.destroy();
console.log(JSON.stringify({ warm, starved, recovered, childFds, escaped, warnings }));
