// `spawnpool bench`: hyperfine's statistics and comparisons, an open-loop
// rate, exports, the main loop's delay, through the CLI as a real process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, cli, dir, withEngine } from './_cli.js';

const exported = (args) => {
  const d = dir();
  const json = join(d, 'out.json');
  const md = join(d, 'out.md');
  const res = cli(['bench', '--export-json', json, '--export-markdown', md, ...args]);
  return { res, json: JSON.parse(readFileSync(json, 'utf8')), md: readFileSync(md, 'utf8') };
};

test('a command of known duration: mean, σ, min and percentiles around it; JSON and Markdown exports', () => {
  const { res, json, md } = exported(['-n', '15', '-w', '2', '--', '/bin/sleep', '0.02']);
  assert.is(res.status, 0, res.stderr);
  const [r] = json.results;
  assert.equal([r.command, r.argv, r.runner, r.runs, r.failed], ['/bin/sleep 0.02', ['/bin/sleep', '0.02'], 'spawnpool', 15, 0]);
  assert.ok(r.time.min >= 20, `min ${r.time.min} ms: sleep 0.02 cannot be faster`);
  assert.ok(r.time.mean >= r.time.min && r.time.mean < 20 + 40, `mean ${r.time.mean} ms`);
  assert.ok(r.time.p50 <= r.time.p99 && r.time.p99 <= r.time.p999 && r.time.p999 <= r.time.max * 1.001, JSON.stringify(r.time));
  assert.ok(r.time.stddev >= 0 && r.time.stddev < 20, `σ ${r.time.stddev}`);
  assert.is(json.options.warmup, 2);
  assert.match(res.stdout, /^Benchmark 1: \/bin\/sleep 0\.02\n {2}Time \(mean ± σ\): +[\d.]+ ms ± [\d.]+ (ms|µs) +\[15 runs, concurrency 1\]\n {2}Range \(min … max\): /);
  assert.match(res.stdout, /Percentiles: +p50 [\d.]+ ms {2}p90 [\d.]+ ms {2}p99 [\d.]+ ms {2}p99\.9 [\d.]+ ms/);
  assert.match(md, /^\| Command \| Mean \[ms\] \| Min \[ms\] \| Max \[ms\] \| p99 \[ms\] \| spawns\/s \| failed \| Relative \|\n\|:---\|/);
  assert.match(md, /\n\| `\/bin\/sleep 0\.02` \| [\d.]+ ± [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 0 \| 1\.00 \|\n$/);
});

test('two commands compared: which ran faster, by how much; --cmd words split without a shell', () => {
  const { res, json } = exported(['-n', '8', '--cmd', "/bin/sh -c 'sleep 0.05'", '--', '/bin/true']);
  assert.is(res.status, 0, res.stderr);
  assert.equal(json.results.map((r) => r.argv), [['/bin/sh', '-c', 'sleep 0.05'], ['/bin/true']]);
  assert.match(res.stdout, /\nSummary\n {2}\/bin\/true ran\n {4}[\d.]+ ± [\d.]+ × faster than \/bin\/sh -c sleep 0\.05\n$/);
  const [slow, fast] = json.results;
  assert.ok(slow.time.mean / fast.time.mean > 1, 'sleep 0.05 is the slower');
});

test('--rate: an open loop at its rate, each run timed from its scheduled start', () => {
  const { res, json } = exported(['--rate', '40/s', '-d', '1s', '--', '/bin/true']);
  assert.is(res.status, 0, res.stderr);
  const [r] = json.results;
  assert.is(r.runs, 40);
  assert.is(r.targetRate, 40);
  // The last run is due at 39/40 s: the batch cannot end sooner, nor run faster than its rate.
  assert.ok(r.seconds >= 0.975, `${r.seconds} s`);
  assert.ok(r.spawnsPerSec <= 40 / 0.975 && r.spawnsPerSec > 25, `${r.spawnsPerSec}/s`);
  assert.match(res.stdout, /\[40 runs, rate 40\/s\]/);
  assert.match(res.stdout, /Throughput: +[\d.]+ spawns\/s \(target 40\/s\)/);
});

test('--compare: child_process, whose spawns block the main loop, is reported as blocked; failures by code', () => {
  const { res, json } = exported(['-n', '10', '-c', '2', '--ballast', '256', '--compare', '--', '/bin/sh', '-c', 'exit 3']);
  assert.is(res.status, 1, 'failed runs fail the bench');
  const [pool, cp] = json.results;
  assert.equal([pool.runner, cp.runner], ['spawnpool', 'child_process']);
  assert.equal([pool.failures, cp.failures], [{ EEXIT: 10 }, { EEXIT: 10 }]);
  assert.ok(cp.loopDelay.samples > 0 && cp.loopDelay.p99 > 0 && cp.loopDelay.stall >= 1, JSON.stringify(cp.loopDelay));
  assert.ok(cp.elu > 0.2, `ELU ${cp.elu}`);
  assert.match(res.stdout, /Failed: +10 of 10 \(EEXIT 10\)/);
  assert.match(res.stdout, /Benchmark 2: \/bin\/sh -c exit 3 \(child_process\)/);
});

test('a command that cannot start is an error with its code, not a rate', () => {
  const res = cli(['bench', '-n', '5', '--', '/no/such/program']);
  assert.is(res.status, 1);
  assert.match(res.stderr, /^spawnpool bench: cannot start \/no\/such\/program: ENOENT: /);
  assert.is(res.stdout, '');
});

test('on a terminal: a progress line while it runs', () => {
  const d = dir();
  const cmd = [process.execPath, CLI, ...withEngine(['bench', '-n', '8', '--', '/bin/sleep', '0.1'])];
  const res = spawnSync('/usr/bin/script', ['-q', '-e', '-c', cmd.map((w) => `'${w}'`).join(' '), join(d, 'typescript')], { encoding: 'utf8', input: '' });
  assert.is(res.status, 0, res.stderr);
  assert.match(readFileSync(join(d, 'typescript'), 'utf8'), /\r\x1b\[K\/bin\/sleep 0\.1: \d\/8 runs, \d\.\d s/);
});

test.run();
