// newSession() and processGroup(): the child leads its own group (and
// session), and every ending signals the whole group, grandchildren included.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command } from '../dist/index.js';
import { ENGINE, pool, helper, expectedLog, processState, rejectsWith } from './_support.js';

const opts = (more = {}) => ({ pool: pool(), ...more });

test('processGroup(): the child leads its own process group', async () => {
  const h = helper();
  await new Command(h.path).processGroup().run(opts());
  // child_process can only setsid, which makes a group and a session.
  assert.is(h.log(), expectedLog({ daemon: 'yes', pgrp: 'own', session: ENGINE === 'node' ? 'own' : 'inherited' }));
});

test('newSession(): the child leads a new session and group', async () => {
  const h = helper();
  await new Command(h.path).newSession().processGroup().run(opts());
  assert.is(h.log(), expectedLog({ daemon: 'yes', pgrp: 'own', session: 'own' }));
});

/** Starts a shell that starts a grandchild; resolves with the handle and the grandchild's pid. */
async function family(cmd, more) {
  const running = await cmd.outputPipe().runAsync(opts(more));
  const lines = running.lines();
  const grandchild = Number((await lines.next()).value);
  assert.is(processState(grandchild), 'alive');
  return { running, grandchild };
}

const SHELL = ['/bin/sh', '-c', 'sleep infinity & echo $!; wait'];

test('abort() of a group kills the grandchildren too', async () => {
  const { running, grandchild } = await family(Command.fromArgv(SHELL).processGroup());
  await running.abort();
  await rejectsWith(running.wait(), 'EABORTED');
  while (processState(grandchild) === 'alive') await new Promise((r) => setTimeout(r, 10));
});

test('a timeout of a session kills the grandchildren too', async () => {
  const { running, grandchild } = await family(Command.fromArgv(SHELL).newSession(), { timeoutMs: 50 });
  const err = await rejectsWith(running.wait(), 'ETIMEDOUT');
  assert.is(err.signal, 'SIGTERM');
  while (processState(grandchild) === 'alive') await new Promise((r) => setTimeout(r, 10));
});

test('without a group, abort() signals the child only: its grandchild lives on', async () => {
  const { running, grandchild } = await family(Command.fromArgv(SHELL));
  await running.abort();
  await rejectsWith(running.wait(), 'EABORTED');
  assert.is(processState(grandchild), 'alive');
  process.kill(grandchild, 'SIGKILL');
});

test.run();
