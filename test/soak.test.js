// A soak of mixed runs on one pool (successes, captures, input, failures,
// missing programs, aborts, timeouts), in a child process of its own: no
// descriptor and no thread more at the end than after the first 10 000
// runs, and RSS within bounds. The full 100 000 runs: bench/soak.mjs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ENGINE } from './_support.js';

const SOAK = fileURLToPath(new URL('./faults/soak.mjs', import.meta.url));

test('20 000 mixed runs: descriptors and threads as after the first 10 000, RSS growth < 25 MiB, every run ended', () => {
  const res = spawnSync(process.execPath, [SOAK, '20000', ENGINE], { encoding: 'utf8', timeout: 300_000 });
  assert.is(res.status, 0, res.stderr);
  const r = JSON.parse(res.stdout);
  assert.is(Object.values(r.ended).reduce((a, b) => a + b, 0), 20_000);
  assert.equal(Object.keys(r.ended).sort(), ['EEXIT', 'ENOENT', 'ETIMEDOUT', 'ok']);
  assert.is(r.last.fds, r.first.fds, 'descriptors');
  assert.is(r.last.threads, r.first.threads, 'threads');
  const grew = (r.last.rss - r.first.rss) / 2 ** 20;
  assert.ok(grew < 25, `RSS grew ${grew.toFixed(1)} MiB`);
});

test.run();
