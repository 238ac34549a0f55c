// Exit-status semantics (virCommandRun / virCommandRawStatus) and the error
// codes of a run that could not start.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, writeFileSync, chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, CommandError, exitedNormally, exitStatus, termSignal, coreDumped } from '../dist/index.js';
import { pool, helper, tmpBase, rejectsWith, processState } from './_support.js';

const opts = (more = {}) => ({ pool: pool(), ...more });

test('status decoding follows wait(2)', () => {
  assert.ok(exitedNormally(0));
  assert.ok(exitedNormally(3 << 8));
  assert.is(exitStatus(3 << 8), 3);
  assert.is(termSignal(3 << 8), undefined);
  assert.not.ok(exitedNormally(9));
  assert.is(exitStatus(9), undefined);
  assert.is(termSignal(9), 'SIGKILL');
  assert.is(termSignal(15), 'SIGTERM');
  assert.ok(coreDumped(6 | 0x80));
  assert.not.ok(coreDumped(6));
  assert.not.ok(coreDumped(0x80 << 8));
});

test('a non-zero exit rejects EEXIT with exitStatus and the stderr tail in the message', async () => {
  const h = helper();
  const err = await rejectsWith(new Command(h.path, '--no-log', '--stderr', 'something broke', '--exit', '3').run(opts()), 'EEXIT');
  assert.ok(err instanceof CommandError);
  assert.is(err.exitStatus, 3);
  assert.is(err.signal, undefined);
  assert.ok(err.pid > 0);
  assert.is(err.command, `${h.path} --no-log --stderr 'something broke' --exit 3`);
  assert.match(err.message, /exited with status 3/);
  assert.match(err.message, /something broke/);
  assert.ok(err.message.includes(err.command));
});

test('a failed child\'s error says how long it ran; a run that never started has no duration', async () => {
  const ran = await new Command('/bin/sh', '-c', 'sleep 0.05; exit 4').run(opts()).catch((e) => e);
  assert.is(ran.code, 'EEXIT');
  assert.ok(ran.durationMs >= 50 && ran.durationMs < 10_000, `${ran.durationMs} ms`);
  const never = await new Command('/no/such/program').run(opts()).catch((e) => e);
  assert.equal([never.code, never.durationMs], ['ENOENT', undefined]);
});

test('the stderr tail is the last few KiB, not the whole stream', async () => {
  const h = helper();
  // The helper writes the --stderr text first, then the spam, then its END STDERR line.
  const err = await rejectsWith(new Command(h.path, '--no-log', '--stderr', 'the first words', '--spam-stderr', '1000000', '--exit', '1').run(opts()), 'EEXIT');
  assert.match(err.message, /xxxxBEGIN STDERR\nEND STDERR$/);
  // Only in the command line the message starts with, not in the tail.
  assert.is(err.message.split('the first words').length, 2);
  assert.ok(err.message.length < 4096 + 200 + err.command.length);
});

test('the stderr tail holds exactly the last 4096 bytes, across many wraps of the reader\'s buffer', async () => {
  // 100003 digits in odd-sized writes, then the exit.
  const script = "let s='';for(let i=0;s.length<100003;i++)s+=i;s=s.slice(0,100003);" +
    "for(let at=0;at<s.length;at+=777)process.stderr.write(s.slice(at,at+777));process.exitCode=1";
  let text = '';
  for (let i = 0; text.length < 100003; i++) text += i;
  text = text.slice(0, 100003);
  const err = await rejectsWith(new Command(process.execPath, '-e', script).run(opts()), 'EEXIT');
  assert.ok(err.message.endsWith(`exited with status 1: ${text.slice(-4096)}`), err.message.slice(-200));
});

test('a killed child whose own child keeps stderr open: the run still ends, with the tail read so far', async () => {
  // The grandchild holds the stderr pipe after the shell is killed; its pid is the tail.
  const marker = join(tmpBase, `grandchild-${process.pid}`);
  const running = await new Command('/bin/sh', '-c', `sleep infinity & echo "grandchild $!" >&2; touch ${marker}; wait`).runAsync(opts());
  while (!existsSync(marker)) await new Promise((resolve) => setTimeout(resolve, 5));
  await running.abort(9);
  const err = await rejectsWith(running.wait(), 'EABORTED');
  const grandchild = Number(/grandchild (\d+)$/.exec(err.message)[1]);
  assert.is(processState(grandchild), 'alive');
  process.kill(grandchild, 'SIGKILL');
});

test('a captured stderr also feeds the message, and is on the error', async () => {
  const h = helper();
  const err = await rejectsWith(new Command(h.path, '--no-log', '--stderr', 'captured words', '--exit', '2').captureOutput().captureError().run(opts()), 'EEXIT');
  assert.match(err.message, /captured words/);
  assert.is(err.stderr, 'captured words\nBEGIN STDERR\nEND STDERR\n');
  assert.is(err.stdout, 'BEGIN STDOUT\nEND STDOUT\n');
});

test('status: true resolves every normal exit with its status', async () => {
  const h = helper();
  const r = await new Command(h.path, '--no-log', '--exit', '3').run(opts({ status: true }));
  assert.is(r.status, 3);
  assert.is(r.signal, undefined);
  const ok = await new Command(h.path, '--no-log').run(opts({ status: true }));
  assert.is(ok.status, 0);
});

test('a signal death rejects ESIGNAL, with or without status: true', async () => {
  const h = helper();
  const cmd = new Command(h.path, '--no-log', '--stderr', 'dying', '--signal', '9');
  const err = await rejectsWith(cmd.run(opts()), 'ESIGNAL');
  assert.is(err.signal, 'SIGKILL');
  assert.is(err.exitStatus, undefined);
  assert.match(err.message, /killed by signal SIGKILL: dying/);
  await rejectsWith(cmd.run(opts({ status: true })), 'ESIGNAL');
});

test('rawStatus + status: the raw wait status, decoded by the helpers', async () => {
  const h = helper();
  const killed = await new Command(h.path, '--no-log', '--signal', '15').rawStatus().run(opts({ status: true }));
  assert.is(killed.status, 15);
  assert.is(killed.signal, 'SIGTERM');
  assert.not.ok(exitedNormally(killed.status));
  assert.is(termSignal(killed.status), 'SIGTERM');
  const exited = await new Command(h.path, '--no-log', '--exit', '1').rawStatus().run(opts({ status: true }));
  assert.is(exited.status, 256);
  assert.ok(exitedNormally(exited.status));
  assert.is(exitStatus(exited.status), 1);
  // rawStatus alone does not make failures resolve.
  await rejectsWith(new Command(h.path, '--no-log', '--exit', '1').rawStatus().run(opts()), 'EEXIT');
  await rejectsWith(new Command(h.path, '--no-log', '--signal', '15').rawStatus().run(opts()), 'ESIGNAL');
});

test('ENOENT: a missing binary, by path or bare name, before anything is spawned', async () => {
  const byPath = await rejectsWith(new Command('/nonexistent/prog').run(opts()), 'ENOENT');
  assert.is(byPath.pid, undefined);
  assert.match(byPath.message, /\/nonexistent\/prog/);
  const bare = await rejectsWith(new Command('spawnpool-surely-missing').run(opts()), 'ENOENT');
  assert.match(bare.message, /cannot find 'spawnpool-surely-missing' in PATH/);
});

test('EACCES: a file without execute permission', async () => {
  const path = join(tmpBase, 'not-executable');
  writeFileSync(path, '#!/bin/sh\nexit 0\n');
  chmodSync(path, 0o644);
  await rejectsWith(new Command(path).run(opts()), 'EACCES');
  const dir = join(tmpBase, 'pathdir');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'spawnpool-noexec'), 'x');
  const saved = process.env.PATH;
  process.env.PATH = dir;
  try {
    await rejectsWith(new Command('spawnpool-noexec').run(opts()), 'EACCES');
  } finally {
    process.env.PATH = saved;
  }
});

test('ENOEXEC: an executable file of no known format', async () => {
  const path = join(tmpBase, 'garbage');
  writeFileSync(path, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]));
  chmodSync(path, 0o755);
  await rejectsWith(new Command(path).run(opts()), 'ENOEXEC');
  // A text file without "#!" is no script: execve refuses it, no shell runs it.
  const text = join(tmpBase, 'text');
  writeFileSync(text, 'echo should not run\n');
  chmodSync(text, 0o755);
  await rejectsWith(new Command(text).captureOutput().run(opts()), 'ENOEXEC');
});

test('EMAXBUFFER: past maxBuffer the child is killed, and the error keeps what was captured', async () => {
  const h = helper();
  const err = await rejectsWith(new Command(h.path, '--no-log', '--spam-stdout', '10000000', '--sleep', '0')
    .captureOutput({ encoding: 'buffer' }).maxBuffer(100_000).run(opts()), 'EMAXBUFFER');
  assert.is(err.signal, 'SIGKILL');
  assert.is(processState(err.pid), 'gone');
  assert.instance(err.stdout, Uint8Array);
  assert.is(err.stdout.length, 100_000);
  assert.ok(err.stdout.every((b) => b === 0x78));
  assert.match(err.message, /maxBuffer \(100000 bytes\)/);
  // Each stream has its own limit: stderr within it is no failure.
  const ok = await new Command(h.path, '--no-log', '--spam-stderr', '100000')
    .captureError().maxBuffer(100_000 + 30).run(opts());
  assert.is(ok.stderr.length, 100_000 + 'BEGIN STDERR\nEND STDERR\n'.length);
});

test('large captures, byte for byte: 40 MiB through the growing buffer; EMAXBUFFER past a limit above the first spill', async () => {
  const h = helper();
  const data = randomBytes(40 * 1024 * 1024 + 12345);
  const r = await new Command('/bin/cat').inputBuffer(data).captureOutput({ encoding: 'buffer' }).run(opts());
  assert.is(r.stdout.byteLength, data.length);
  assert.ok(Buffer.from(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength).equals(data));
  // A limit between two doublings: exactly the first `limit` bytes are kept.
  const limit = 9 * 1024 * 1024 + 7;
  const err = await rejectsWith(new Command(h.path, '--no-log', '--spam-stdout', String(64 * 1024 * 1024))
    .captureOutput({ encoding: 'buffer' }).maxBuffer(limit).run(opts()), 'EMAXBUFFER');
  assert.is(err.stdout.length, limit);
  assert.ok(err.stdout.every((b) => b === 0x78));
  // Text decodes from the view, not from the whole buffer behind it.
  const text = await new Command('/bin/cat').inputBuffer(data.toString('hex')).captureOutput().run(opts());
  assert.is(text.stdout.length, data.length * 2);
  assert.is(text.stdout.slice(-20), data.toString('hex').slice(-20));
});

test('ENOCWD: a missing working directory', async () => {
  const dir = join(tmpBase, 'gone');
  mkdirSync(dir, { recursive: true });
  rmSync(dir, { recursive: true });
  const err = await rejectsWith(new Command('/bin/true').cwd(dir).run(opts()), 'ENOCWD');
  assert.match(err.message, /gone/);
});

test('bad run options reject EINVAL', async () => {
  const cmd = new Command('/bin/true');
  await rejectsWith(cmd.run(null), 'EINVAL');
  await rejectsWith(cmd.run({ timeoutMs: -1 }), 'EINVAL');
  await rejectsWith(cmd.run({ timeoutMs: 'soon' }), 'EINVAL');
  await rejectsWith(cmd.run({ killSignal: 'SIGNOPE' }), 'EINVAL');
  await rejectsWith(cmd.run({ killGraceMs: Infinity }), 'EINVAL');
  await rejectsWith(cmd.run({ pool: {} }), 'EINVAL');
  await rejectsWith(cmd.run({ signal: 'abort' }), 'EINVAL');
});

test('a fd that is not open fails the run, not the worker, and the pool keeps serving', async () => {
  const err = await rejectsWith(new Command('/bin/true').passFd(987).run(opts()), 'EBADF');
  assert.match(err.message, /Cannot run/);
  const r = await new Command('/bin/true').run(opts());
  assert.is(r.status, 0);
});

test.run();
