// Faults injected for real, in a child process of the test: descriptors
// used up (ulimit -n) before the first run and on a warm pool.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const EMFILE = fileURLToPath(new URL('./faults/emfile.mjs', import.meta.url));

function underFdLimit(env) {
  // stdio[3]: a pipe inherited without close-on-exec, as a host may hold one.
  const res = spawnSync('/bin/sh', ['-c', `ulimit -n 256 && exec "${process.execPath}" "${EMFILE}"`],
    { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  assert.is(res.status, 0, res.stderr);
  return JSON.parse(res.stdout.trim().split('\n').pop());
}

const only = (codes, allowed) => codes.every((c) => allowed.includes(c));

test('descriptors used up before the first run: EMFILE runs, no crash, no fall back to child_process, recovery', () => {
  const r = underFdLimit({ COLD: '1' });
  assert.equal(r.escaped, []);
  assert.equal(r.warnings, [], 'no SPAWNPOOL_NO_NATIVE warning: the engine stays native');
  assert.ok(r.starved.length === 30 && only(r.starved, ['EMFILE', 'ENFILE']), r.starved.join(' '));
  assert.ok(only(r.recovered, ['ok']), r.recovered.join(' '));
  // The native engine closes every descriptor above 2 in the child; child_process would pass fd 3 on.
  assert.equal(r.childFds, ['0', '1', '2']);
});

test('descriptors used up on a warm pool: only EMFILE, never EWORKER; the pool serves again', () => {
  const r = underFdLimit({ COLD: '0' });
  assert.equal(r.escaped, []);
  assert.ok(only(r.warm, ['ok']), r.warm.join(' '));
  assert.ok(r.starved.length === 30 && only(r.starved, ['EMFILE', 'ENFILE']), r.starved.join(' '));
  assert.ok(only(r.recovered, ['ok']), r.recovered.join(' '));
  assert.equal(r.childFds, ['0', '1', '2']);
});

test.run();
