// The test command: the whole uvu suite once per engine (each in its own
// process, so each gets a fresh default pool), with V8 coverage collected by
// c8, then the coverage report and check, then one plain summary line.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const coverageDir = `${root}coverage/tmp`;
const engines = ['node'];
if (existsSync(`${root}dist/native/spawnpool_native.node`)) engines.push('native');
else console.log('native engine not built: running the suite on the node engine only');

// A handle left open (a timer, a socket) keeps uvu from exiting after its
// last test: past this, the pass is killed and counts as failed.
const PASS_LIMIT_MS = 25 * 60 * 1000;

function run(args, env, onStdout) {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.on('data', (d) => { onStdout?.(d); process.stdout.write(d); });
  const limit = setTimeout(() => {
    console.log(`\n${args[0]}: still running after ${PASS_LIMIT_MS / 60000} minutes: killed`);
    child.kill('SIGKILL');
  }, PASS_LIMIT_MS);
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(limit);
    resolve(code);
  }));
}

rmSync(`${root}coverage`, { recursive: true, force: true });
let passed = 0;
let failed = 0;
let skipped = 0;
for (const engine of engines) {
  console.log(`\n=== engine: ${engine} ===`);
  let out = '';
  const code = await run([`${root}node_modules/uvu/bin.js`, 'test', '.test.js$'],
    { SPAWNPOOL_TEST_ENGINE: engine, FORCE_COLOR: '0', NODE_V8_COVERAGE: coverageDir }, (d) => { out += d; });
  // uvu colours some counts even with FORCE_COLOR=0.
  out = out.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
  // Skipped: tests that need root, for any other user (each says why).
  const skip = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  passed += ok;
  skipped += skip;
  // A file that crashed before uvu's summary still counts once.
  // (uvu's Total leaves the skipped ones out.)
  failed += Math.max(total - ok, code === 0 ? 0 : 1);
}

console.log('\n=== coverage (c8, .c8rc.json) ===');
const coverage = await run([`${root}node_modules/c8/bin/c8.js`, 'report', '--temp-directory', coverageDir]);
if (coverage !== 0) console.log('coverage is below the thresholds in .c8rc.json');

console.log(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed === 0 && coverage === 0 ? 0 : 1;
