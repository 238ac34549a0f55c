// Runs the whole uvu suite once per engine (each in its own process, so each
// gets a fresh default pool), then prints one plain summary line.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const engines = ['node'];
if (existsSync(`${root}dist/native/spawnpool_native.node`)) engines.push('native');
else console.log('native engine not built: running the suite on the node engine only');

let passed = 0;
let failed = 0;
for (const engine of engines) {
  console.log(`\n=== engine: ${engine} ===`);
  const child = spawn(process.execPath, [`${root}node_modules/uvu/bin.js`, 'test', '.test.js$'], {
    cwd: root,
    env: { ...process.env, SPAWNPOOL_TEST_ENGINE: engine, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
  const code = await new Promise((resolve) => child.on('close', resolve));
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
  passed += ok;
  failed += Math.max(total - ok, code === 0 ? 0 : 1);
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
