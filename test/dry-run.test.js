import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command, withDryRun } from '../dist/index.js';
import { pool, rejectsWith } from './_support.js';

test('inside withDryRun nothing runs; the handler answers and every command is listed', async () => {
  const seen = [];
  const report = await withDryRun((req) => {
    seen.push(req);
    return req.argv[1] === 'fail' ? { status: 2, stderr: 'nope' } : { stdout: `out of ${req.argv[0]}` };
  }, async () => {
    const a = await new Command('/nonexistent/tool', 'x y').envPair('K', 'V').inputBuffer('in').captureOutput().run();
    const b = await new Command('/nonexistent/tool', 'fail').run({ status: true });
    const c = await rejectsWith(new Command('/nonexistent/tool', 'fail').run(), 'EEXIT');
    return [a.stdout, b.status, c.message];
  });
  assert.equal(report.value, ['out of /nonexistent/tool', 2, "Child process (/nonexistent/tool fail) exited with status 2: nope"]);
  assert.equal(report.commands, ["K=V /nonexistent/tool 'x y'", '/nonexistent/tool fail', '/nonexistent/tool fail']);
  assert.equal(seen[0], { argv: ['/nonexistent/tool', 'x y'], env: { K: 'V' }, input: 'in', commandLine: "K=V /nonexistent/tool 'x y'" });
  assert.is(seen[1].input, undefined);
  assert.is(seen[1].env.PATH, process.env.PATH);
});

test('an async handler, combined capture, runAsync, and a handler returning nothing', async () => {
  const report = await withDryRun(async (req) => {
    await new Promise((r) => setTimeout(r, 1));
    if (req.argv[0] === 'quiet') return undefined;
    return { stdout: 'o', stderr: 'e' };
  }, async () => {
    const combined = await new Command('tool').captureCombined().run();
    const running = await new Command('tool').captureOutput().runAsync();
    const waited = await running.wait();
    await running.abort();
    const quiet = await new Command('quiet').captureOutput().run();
    return [combined.output, running.pid, waited.stdout, quiet.stdout, quiet.status];
  });
  assert.equal(report.value, ['oe', 0, 'o', '', 0]);
  assert.is(report.commands.length, 3);
});

test('dry runs are scoped to their async context: concurrent scopes and real runs do not mix', async () => {
  const real = new Command('/bin/echo', 'real').captureOutput().run({ pool: pool() });
  const [one, two] = await Promise.all([
    withDryRun(() => ({ stdout: 'one' }), async () => {
      await new Promise((r) => setTimeout(r, 5));
      return (await new Command('a').captureOutput().run()).stdout;
    }),
    withDryRun(() => ({ stdout: 'two' }), async () => (await new Command('b').captureOutput().run()).stdout),
  ]);
  assert.equal([one.value, one.commands], ['one', ['a']]);
  assert.equal([two.value, two.commands], ['two', ['b']]);
  assert.is((await real).stdout, 'real\n');
});

test('withDryRun rejects bad arguments with EINVAL', async () => {
  await rejectsWith(withDryRun(null, () => 1), 'EINVAL');
  await rejectsWith(withDryRun(() => ({}), 'x'), 'EINVAL');
});

test.run();
