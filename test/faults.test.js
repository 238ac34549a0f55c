// Faults injected for real, in a child process of the test: descriptors
// used up (ulimit -n) before the first run and on a warm pool.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reachableCopy, rootTest } from './_support.js';

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

rootTest(test, 'RLIMIT_NPROC reached by an unprivileged user: EAGAIN, and the pool serves again once processes end', () => {
  const copy = reachableCopy();
  const script = join(copy.root, 'nproc.mjs');
  copyFileSync(fileURLToPath(new URL('./faults/nproc.mjs', import.meta.url)), script);
  // nobody, under a limit of its own: the count is this node's threads and children.
  const res = spawnSync('/usr/bin/prlimit', ['--nproc=48:48', process.execPath, script, copy.entry],
    { uid: 65534, gid: 65534, cwd: '/', encoding: 'utf8', timeout: 60_000 });
  assert.is(res.status, 0, res.stderr);
  const r = JSON.parse(res.stdout.trim().split('\n').pop());
  assert.equal(r.escaped, []);
  assert.equal(r.warm, Array(10).fill('ok'));
  assert.ok(r.fillers > 0 && r.fillers < 48, `${r.fillers} sleepers`);
  assert.equal(r.limited, Array(10).fill('EAGAIN'));
  assert.equal(r.raised, Array(10).fill('ok'));
});

test.run();
