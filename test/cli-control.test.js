// `spawnpool run` under interrupts, timeouts, --halt, broken pipes and
// failing files: what runs, what is logged, the exit status.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, cli, dir, jsonLines, once, start, until, withEngine } from './_cli.js';
import { rootTest } from './_support.js';

const ids = (n) => Array.from({ length: n }, (_, i) => `j${i}`);
const runs = (path) => {
  const counts = new Map();
  for (const id of readFileSync(path, 'utf8').split('\n').filter(Boolean)) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
};
/** Gone, or a zombie nobody has reaped yet: either way no longer running. */
const dead = (pid) => !existsSync(`/proc/${pid}`) || / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

test('Ctrl-C on a terminal (SIGINT to the whole process group), then --resume: no job skipped', async () => {
  const d = dir();
  const ran = join(d, 'ran');
  const joblog = join(d, 'joblog');
  const n = 12;
  const args = ['-j', '3', '--joblog', joblog, '--', '/bin/sh', '-c', `echo {} >> ${ran}; sleep 0.3`, ':::', ...ids(n)];
  // detached: the CLI leads a process group, as a shell's foreground job does.
  const child = start(['run', ...args], { detached: true, stdio: 'ignore' });
  await until(() => existsSync(joblog) && jsonLines(joblog).length >= 3);
  process.kill(-child.pid, 'SIGINT');
  const [code] = await once(child, 'exit');
  assert.is(code, 130);
  const logged = jsonLines(joblog);
  assert.ok(logged.length < n, 'cut short');
  // The jobs got no SIGINT of their own: none is logged as failed.
  assert.ok(logged.every((r) => r.ok), JSON.stringify(logged.filter((r) => !r.ok)));
  const res = cli(['run', '--resume', ...args]);
  assert.is(res.status, 0, res.stderr);
  const counts = runs(ran);
  for (const id of ids(n)) assert.ok(counts.get(id) >= 1 && counts.get(id) <= 2, `${id} ran ${counts.get(id)} times`);
  assert.equal(jsonLines(joblog).map((r) => r.id).sort(), ids(n).map((_, i) => String(i + 1)).sort());
});

test('SIGTERM: exit 143; a timeout ends the job\'s whole tree, grandchildren included', async () => {
  const d = dir();
  const pids = join(d, 'pids');
  const child = start(['run', '--', '/bin/sh', '-c', `sleep 30 & echo $! >> ${pids}; wait`, ':::', 'a'], { stdio: 'ignore' });
  await until(() => existsSync(pids) && readFileSync(pids, 'utf8').endsWith('\n'));
  child.kill('SIGTERM');
  assert.equal(await once(child, 'exit'), [143, null]);
  const res = cli(['run', '--timeout', '0.3', '--', '/bin/sh', '-c', `sleep 30 & echo $! >> ${pids}; wait`, ':::', 'b']);
  assert.is(res.status, 1);
  assert.match(res.stderr, /job 1: ETIMEDOUT: .* timed out after 300 ms/);
  const [first, second] = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
  await until(() => dead(first) && dead(second));
});

test('--timeout takes ms, s, m, h and bare seconds', () => {
  const sleep = ['--', '/bin/sleep', '{}', ':::', '5'];
  for (const t of ['200ms', '0.2', '0.2s']) assert.match(cli(['run', '--timeout', t, ...sleep]).stderr, /timed out after 200 ms/, t);
  for (const t of ['1m', '1h', '2d', '1h30m', '1.5s']) assert.is(cli(['run', '--timeout', t, '--', '/bin/sleep', '{}', ':::', '0.01']).status, 0, t);
  for (const t of ['5x', '0', '-1s', 'm']) assert.is(cli(['run', '--timeout', t, ...sleep]).status, 2, t);
});

test('--halt: now ends the running jobs, soon lets them finish; fail=N, N%, success=N', () => {
  const d = dir();
  const trace = join(d, 'trace');
  // Job 1 fails at once; jobs 2-3 take 0.5 s; jobs 4-6 would start after.
  const jobs = ['--', '/bin/sh', '-c', `[ {} = 1 ] && exit 1; sleep 0.5; echo {} >> ${trace}`, ':::', '1', '2', '3', '4', '5', '6'];
  const now = cli(['run', '-j', '3', '--halt', 'now,fail=1', '--joblog', join(d, 'now.log'), ...jobs]);
  assert.is(now.status, 1, now.stderr);
  assert.match(now.stderr, /--halt now,fail=1: 1 failed; no new jobs, ending 2 running/);
  assert.not.ok(existsSync(trace), 'the running jobs were ended');
  // Ended by the halt, they are not logged: --resume runs them.
  assert.equal(jsonLines(join(d, 'now.log')).map((r) => r.id), ['1']);
  const soon = cli(['run', '-j', '3', '--halt', 'soon,fail=1', ...jobs]);
  assert.is(soon.status, 1);
  assert.equal(readFileSync(trace, 'utf8').split('\n').filter(Boolean).sort(), ['2', '3']);
  // 2 of 6 jobs failing is 33 %: fail=30% halts, fail=50% does not.
  const some = ['--', '/bin/sh', '-c', 'exit $(( {} % 3 == 0 ))', ':::', '1', '2', '3', '4', '5', '6'];
  assert.match(cli(['run', '-j', '1', '--halt', 'soon,fail=30%', ...some]).stderr, /halted/);
  assert.match(cli(['run', '-j', '1', '--halt', 'soon,fail=50%', ...some]).stderr, /6 jobs: 4 ok, 2 failed/);
  const success = cli(['run', '-j', '1', '--halt', 'soon,success=2', ...some]);
  assert.match(success.stderr, /--halt soon,success=2: 2 succeeded; no new jobs/);
  assert.match(success.stderr, /2 jobs: 2 ok, 0 failed .*, halted/);
  assert.is(success.status, 0);
  assert.match(cli(['run', '-j', '1', '--halt', 'now,success=50%', ...some]).stderr, /--halt now,success=50%: 3 succeeded/);
  for (const never of ['never', '0']) assert.match(cli(['run', '-j', '1', '--halt', never, ...some]).stderr, /6 jobs: 4 ok, 2 failed in/);
  // parallel's old forms: 1 is soon,fail=1, 2 is now,fail=1.
  assert.match(cli(['run', '-j', '1', '--halt', '2', ...some]).stderr, /--halt now,fail=1: 1 failed/);
});

test('--resume-failed runs the failed jobs again and skips the succeeded ones', () => {
  const d = dir();
  const joblog = join(d, 'joblog');
  const ran = join(d, 'ran');
  const flag = join(d, 'flag');
  // Odd jobs fail until the flag exists.
  const jobs = ['--joblog', joblog, '--', '/bin/sh', '-c', `echo {} >> ${ran}; [ $(( {} % 2 )) = 0 ] || [ -e ${flag} ]`, ':::', '1', '2', '3', '4'];
  assert.is(cli(['run', ...jobs]).status, 1);
  assert.is(cli(['run', '--resume', ...jobs]).status, 1, '--resume skips the failed ones too');
  writeFileSync(flag, '');
  const res = cli(['run', '--resume-failed', ...jobs]);
  assert.is(res.status, 0, res.stderr);
  assert.match(res.stderr, /2 jobs: 2 ok, 0 failed, 2 skipped/);
  assert.equal([...runs(ran)].sort(), [['1', 2], ['2', 1], ['3', 2], ['4', 1]]);
});

test('the summary names the failed jobs, ten of them, then a count', () => {
  const res = cli(['run', '-k', '--', '/bin/sh', '-c', 'echo "no {}" >&2; exit 7', ':::', ...ids(12)]);
  assert.is(res.status, 1);
  assert.match(res.stderr, /12 jobs: 0 ok, 12 failed/);
  assert.match(res.stderr, /\n {2}job 1: EEXIT: .*exited with status 7: no j0\n/);
  assert.match(res.stderr, /\n {2}job 10: EEXIT: .*no j9\n {2}\.\.\. and 2 more failed\n/);
  assert.not.match(res.stderr, /job 11:/);
});

test('--results appends to what the shell opened (a file with >>, a pipe), never truncating it', () => {
  const d = dir();
  const log = join(d, 'app.log');
  writeFileSync(log, 'kept\n');
  const fd = openSync(log, 'a');
  const res = spawnSync(process.execPath, [CLI, ...withEngine(['run', '-u', '--results', '/dev/stdout', '--', '/bin/echo', ':::', 'x'])],
    { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
  closeSync(fd);
  assert.is(res.status, 0, res.stderr);
  const [kept, out, result] = readFileSync(log, 'utf8').split('\n');
  assert.equal([kept, out, JSON.parse(result).argv], ['kept', 'x', ['/bin/echo', 'x']]);
  // A pipe: the reader gets the job's output and the results, in order.
  const piped = cli(['run', '-u', '-j', '1', '--results', '/dev/stdout', '--', '/bin/echo', ':::', 'p']);
  assert.equal(piped.stdout.split('\n').slice(0, 2).map((l, i) => (i === 0 ? l : JSON.parse(l).args)), ['p', ['p']]);
  // A FIFO read by another process.
  const fifo = join(d, 'fifo');
  spawnSync('/usr/bin/mkfifo', [fifo]);
  const reader = spawn('/bin/cat', [fifo]);
  let got = '';
  reader.stdout.on('data', (b) => (got += b));
  assert.is(cli(['run', '--results', fifo, '--', '/bin/true', ':::', 'a', 'b']).status, 0);
  return once(reader, 'close').then(() => assert.equal(got.split('\n').filter(Boolean).map((l) => JSON.parse(l).args[0]).sort(), ['a', 'b']));
});

test('a reader closing stdout ends the batch quietly (141); a file that cannot be written exits 3 naming it', async () => {
  const child = start(['run', '-j', '2', '--', '/bin/echo'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  child.stdin.on('error', () => undefined);
  child.stdin.write(Array.from({ length: 50_000 }, (_, i) => `line ${i}\n`).join(''));
  child.stdin.end();
  await once(child.stdout, 'data');
  child.stdout.destroy();
  assert.equal(await once(child, 'exit'), [141, null]);
  assert.is(err, '');
  for (const flag of ['--results', '--joblog']) {
    const res = cli(['run', flag, '/dev/full', '--', '/bin/true', ':::', 'a', 'b']);
    assert.is(res.status, 3, `${flag}: ${res.stderr}`);
    assert.match(res.stderr, /cannot write \/dev\/full: ENOSPC/);
  }
});

rootTest(test, 'a joblog on a full filesystem: no new jobs, every line written kept, exit 3 naming it; --resume skips exactly those', () => {
  const d = dir();
  const mnt = join(d, 'small');
  mkdirSync(mnt);
  // A 64 KiB tmpfs holds a few hundred joblog lines.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
  try {
    const joblog = join(mnt, 'jobs.log');
    const jobs = ['-j', '4', '--', '/bin/true', ':::', ...ids(2000)];
    const res = cli(['run', '--joblog', joblog, ...jobs]);
    assert.is(res.status, 3, res.stderr);
    assert.match(res.stderr, new RegExp(`cannot write ${joblog}: ENOSPC`));
    const text = readFileSync(joblog, 'utf8');
    const whole = text.split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l));
    assert.ok(whole.length > 100 && whole.length < 2000, `${whole.length} lines`);
    // The same log elsewhere: the resumed batch runs what it does not show finished, and only that.
    const copy = join(d, 'jobs.log');
    writeFileSync(copy, text);
    const again = cli(['run', '--resume', '--joblog', copy, ...jobs]);
    assert.is(again.status, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`${2000 - whole.length} jobs: ${2000 - whole.length} ok, 0 failed, ${whole.length} skipped`));
    // The torn last line stays torn, on a line of its own: every job is logged once.
    const parsed = readFileSync(copy, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
      try {
        return [JSON.parse(l).id];
      } catch {
        return [];
      }
    });
    assert.equal([parsed.length, new Set(parsed).size], [2000, 2000]);
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test('-j N%, +N and 0 run jobs at once; bad forms are usage errors', () => {
  for (const j of ['100%', '+0', '0', '1']) assert.is(cli(['run', '-j', j, '--', '/bin/true', ':::', 'a', 'b']).status, 0, j);
  for (const j of ['x', '0%', '-', '1.5']) assert.is(cli(['run', '-j', j, '--', '/bin/true', ':::', 'a']).status, 2, j);
});

test('on a terminal: --bar draws progress on stderr, cleared before the jobs\' output; a warning when stdin is the terminal', () => {
  const d = dir();
  const cmd = [process.execPath, CLI, ...withEngine(['run', '--bar', '-j', '1', '--', '/bin/sh', '-c', 'sleep 0.25; echo done-{}', ':::', 'a', 'b', 'c'])];
  // script(1) gives the CLI a real pseudo-terminal; its transcript is what the terminal showed.
  const typescript = join(d, 'typescript');
  const res = spawnSync('/usr/bin/script', ['-q', '-e', '-c', cmd.map((w) => `'${w}'`).join(' '), typescript], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: '' });
  assert.is(res.status, 0, res.stderr);
  const shown = readFileSync(typescript, 'utf8');
  assert.match(shown, /\[#{10}\.{20}\] 33% 1\/3 {2}done 1 {2}failed 0/);
  // Every job line starts a line of its own: the bar was cleared first.
  for (const name of ['a', 'b', 'c']) assert.match(shown, new RegExp(`(^|\\r\\x1b\\[K|\\n)done-${name}\\r?\\n`));
  const stdinTty = spawnSync('/usr/bin/script', ['-q', '-e', '-c', [process.execPath, CLI, 'run', '--', '/bin/echo'].map((w) => `'${w}'`).join(' '), join(d, 't2')],
    { encoding: 'utf8', input: '\x04' });
  assert.match(readFileSync(join(d, 't2'), 'utf8'), /reading the input from the terminal; end it with Ctrl-D/);
  assert.is(stdinTty.status, 0);
});

test.run();
