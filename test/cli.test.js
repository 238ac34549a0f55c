// The spawnpool CLI as a real process: batches, results, joblog, resume
// after SIGINT and after SIGKILL, usage errors, bench.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, dir, jsonLines, once, start, until } from './_cli.js';

test('a batch with failures and a malformed line: results line by line, exit 1', () => {
  const d = dir();
  const batch = join(d, 'batch.jsonl');
  writeFileSync(batch, [
    '["/bin/echo", "one"]',
    '# a comment',
    '',
    '{"id": "fail", "argv": ["/bin/sh", "-c", "echo oops >&2; exit 3"]}',
    '{"argv": "not an array"}',
    '{"id": 7, "argv": ["/bin/cat"], "input": "fed\\n", "env": {"X": "1"}}',
    '{"argv": ["/bin/sh", "-c", "echo $SPAWNPOOL_X; pwd"], "env": {"SPAWNPOOL_X": "from env"}, "cwd": "/tmp"}',
    '["/no/such/program"]',
    '{"argv": ["/bin/sleep", "5"], "timeoutMs": 50}',
    '{"argv": ["/bin/sh", "-c", "kill -9 $$"]}',
    'not json',
  ].join('\n'));
  const results = join(d, 'results.jsonl');
  const res = cli(['run', batch, '-j', '3', '--results', results, '--capture']);
  assert.is(res.status, 1, res.stderr);
  assert.match(res.stderr, /line 5: "argv" must be a non-empty array of strings/);
  assert.match(res.stderr, /line 11: not JSON/);
  assert.match(res.stderr, /9 jobs: 3 ok, 6 failed/);
  const byLine = new Map(jsonLines(results).map((r) => [r.line, r]));
  assert.equal([...byLine.keys()].sort((a, b) => a - b), [1, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.equal(byLine.get(1), { id: '1', line: 1, argv: ['/bin/echo', 'one'], status: 0, signal: null, code: null,
    durationMs: byLine.get(1).durationMs, attempts: 1, stdout: 'one\n', stderr: '' });
  const fail = byLine.get(4);
  assert.equal([fail.id, fail.status, fail.code, fail.stderr], ['fail', 3, 'EEXIT', 'oops\n']);
  assert.match(fail.message, /exited with status 3: oops/);
  assert.equal([byLine.get(5).code, byLine.get(5).id], ['EBADLINE', null]);
  assert.equal([byLine.get(6).id, byLine.get(6).stdout], ['7', 'fed\n']);
  assert.is(byLine.get(7).stdout, 'from env\n/tmp\n');
  assert.is(byLine.get(8).code, 'ENOENT');
  assert.equal([byLine.get(9).code, byLine.get(9).signal], ['ETIMEDOUT', 'SIGTERM']);
  assert.equal([byLine.get(10).code, byLine.get(10).signal, byLine.get(10).status], ['ESIGNAL', 'SIGKILL', null]);
  assert.is(byLine.get(11).code, 'EBADLINE');
  assert.ok(Object.values(Object.fromEntries(byLine)).every((r) => r.code === 'EBADLINE' || r.durationMs >= 0));
});

test('every job succeeding exits 0; --retries runs a failed job again', () => {
  const d = dir();
  const flag = join(d, 'flag');
  const batch = join(d, 'batch.jsonl');
  // Fails the first time, succeeds the second.
  writeFileSync(batch, `["/bin/sh", "-c", "[ -e ${flag} ] || { touch ${flag}; exit 1; }"]\n["/bin/true"]\n`);
  const results = join(d, 'results.jsonl');
  const res = cli(['run', batch, '--retries', '2', '--results', results]);
  assert.is(res.status, 0, res.stderr);
  const first = jsonLines(results).find((r) => r.line === 1);
  assert.equal([first.status, first.attempts], [0, 2]);
  // Without retries the same kind of job fails the batch.
  writeFileSync(batch, '["/bin/false"]\n');
  assert.is(cli(['run', batch]).status, 1);
});

test('--timeout ends a job that runs too long; a job\'s own timeoutMs wins', () => {
  const d = dir();
  const batch = join(d, 'batch.jsonl');
  writeFileSync(batch, ['["/bin/sleep", "infinity"]', '{"argv": ["/bin/sleep", "0.2"], "timeoutMs": 60000}'].join('\n'));
  const results = join(d, 'results.jsonl');
  const res = cli(['run', batch, '--timeout', '100ms', '--results', results]);
  assert.is(res.status, 1, res.stderr);
  const byLine = new Map(jsonLines(results).map((r) => [r.line, r]));
  assert.equal([byLine.get(1).code, byLine.get(1).signal], ['ETIMEDOUT', 'SIGTERM']);
  assert.equal([byLine.get(2).code, byLine.get(2).status], [null, 0]);
});

test('--halt-on-fail starts no job after the first failure', () => {
  const d = dir();
  const batch = join(d, 'batch.jsonl');
  writeFileSync(batch, ['["/bin/false"]', `["/bin/touch", "${join(d, 'after')}"]`].join('\n'));
  const res = cli(['run', batch, '-j', '1', '--halt-on-fail']);
  assert.is(res.status, 1);
  assert.match(res.stderr, /--halt soon,fail=1: 1 failed; no new jobs/);
  assert.not.ok(existsSync(join(d, 'after')));
});

test('-j bounds the jobs running at once, also while the worker holds the next ones ready', () => {
  for (const j of [1, 2, 3]) {
    const d = dir();
    const trace = join(d, 'trace');
    const batch = join(d, 'batch.jsonl');
    // Each job appends a line as it starts and as it ends (O_APPEND: whole lines, in order).
    writeFileSync(batch, Array.from({ length: 12 }, (_, i) =>
      JSON.stringify(['/bin/sh', '-c', `echo "+ ${i}" >> ${trace}; sleep 0.05; echo "- ${i}" >> ${trace}`])).join('\n'));
    const res = cli(['run', batch, '-j', String(j)]);
    assert.is(res.status, 0, res.stderr);
    let now = 0;
    let most = 0;
    const lines = readFileSync(trace, 'utf8').trim().split('\n');
    for (const line of lines) {
      now += line.startsWith('+') ? 1 : -1;
      most = Math.max(most, now);
    }
    assert.is(lines.length, 24);
    assert.is(most, j, `-j ${j}: at most ${j} at once, and ${j} reached`);
  }
});

test('input is streamed: jobs run before the input ends', async () => {
  const d = dir();
  const joblog = join(d, 'joblog');
  const child = start(['run', '-', '--joblog', joblog], { stdio: ['pipe', 'ignore', 'pipe'] });
  child.stdin.write('{"id": "first", "argv": ["/bin/true"]}\n');
  // The first job is logged as finished while stdin is still open.
  await until(() => existsSync(joblog) && readFileSync(joblog, 'utf8').includes('"first"'));
  child.stdin.end('{"id": "second", "argv": ["/bin/true"]}\n');
  const [code] = await once(child, 'exit');
  assert.is(code, 0);
  assert.equal(jsonLines(joblog).map((r) => r.id), ['first', 'second']);
});

test('a huge input is read only as fast as jobs start: the reader stays a bounded distance ahead', async () => {
  const d = dir();
  const joblog = join(d, 'joblog');
  const child = start(['run', '-', '-j', '4', '--joblog', joblog], { stdio: ['pipe', 'ignore', 'ignore'] });
  const line = '["/bin/true"]\n';
  let written = 0;
  let stopped = false;
  // As fast as the pipe takes it: 10 million lines, were they all read.
  const pump = () => {
    while (!stopped && written < 10_000_000 * line.length) {
      written += line.length;
      if (!child.stdin.write(line)) return void child.stdin.once('drain', pump);
    }
  };
  child.stdin.on('error', () => undefined);
  pump();
  await until(() => existsSync(joblog) && readFileSync(joblog, 'utf8').split('\n').length > 200);
  const done = readFileSync(joblog, 'utf8').split('\n').length;
  const ahead = written - done * line.length;
  stopped = true;
  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  assert.is(code, 130);
  // Pipe buffer, the reader's chunk and the writer's own buffer: well under 1 MiB.
  assert.ok(ahead < 1024 * 1024, `${ahead} bytes written ahead of ${done} finished jobs`);
});

/** A batch whose jobs each append their id to a file, then take a while. */
function slowBatch(d, n) {
  const ran = join(d, 'ran');
  const batch = join(d, 'batch.jsonl');
  writeFileSync(batch, Array.from({ length: n }, (_, i) =>
    JSON.stringify({ id: `job${i}`, argv: ['/bin/sh', '-c', `echo job${i} >> ${ran}; sleep 0.2`] })).join('\n'));
  return { batch, ran, joblog: join(d, 'joblog') };
}

function checkRanOnceOrTwice(ran, joblog, n) {
  const counts = new Map();
  for (const id of readFileSync(ran, 'utf8').split('\n').filter(Boolean)) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (let i = 0; i < n; i++) {
    const c = counts.get(`job${i}`) ?? 0;
    assert.ok(c >= 1 && c <= 2, `job${i} ran ${c} times`);
  }
  // Every job is logged as finished exactly once over both runs.
  const logged = jsonLines(joblog).map((r) => r.id).sort();
  assert.equal(logged, Array.from({ length: n }, (_, i) => `job${i}`).sort());
}

for (const signal of ['SIGINT', 'SIGKILL']) {
  test(`${signal} mid-batch, then --resume: every job ran, none more than twice`, async () => {
    const d = dir();
    const n = 12;
    const { batch, ran, joblog } = slowBatch(d, n);
    const child = start(['run', batch, '-j', '3', '--joblog', joblog], { stdio: 'ignore' });
    await until(() => existsSync(joblog) && jsonLines(joblog).length >= 3);
    child.kill(signal);
    const [code, sig] = await once(child, 'exit');
    if (signal === 'SIGINT') assert.is(code, 130);
    else assert.is(sig, 'SIGKILL');
    const done = jsonLines(joblog).length;
    assert.ok(done < n, 'the batch was cut short');
    const res = cli(['run', batch, '-j', '3', '--joblog', joblog, '--resume']);
    assert.is(res.status, 0, res.stderr);
    assert.match(res.stderr, new RegExp(`${done} skipped`));
    checkRanOnceOrTwice(ran, joblog, n);
  });
}

test('usage errors exit 2 with a message; --version and --help', () => {
  for (const args of [[], ['frobnicate'], ['run', '-j', 'x'], ['run', '--timeout', '5x'], ['run', '--halt', 'soon,fail=0'], ['run', '-u', '--tag', '--', 'echo'], ['run', '--resume'], ['run', '--bogus'], ['run', '/no/such/file'],
    ['bench', '--engine', 'fork'], ['bench', '-n', 'x'], ['bench', '-c', '2', '--rate', '5'], ['bench', '--rate', 'x'],
    ['bench', '-n', '2', '-d', '1s'], ['bench', '--cmd', "'open"], ['bench', '--', 'a', '---']]) {
    const res = cli(args);
    assert.is(res.status, 2, `${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, /^spawnpool: /);
  }
  assert.match(cli(['--version']).stdout, /^\d+\.\d+\.\d+\n$/);
  assert.match(cli(["--help"]).stdout, /spawnpool run \[OPTIONS\] \[--\] CMD \[ARGS...\] \[::: A B ...\]/);
});

test.run();
