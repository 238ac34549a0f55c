// The published .d.ts files, checked by tsc against test/types/expect.ts: the
// result fields follow the captures asked for, nothing internal shows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ENGINE } from './_support.js';

const root = fileURLToPath(new URL('..', import.meta.url));

// Engine-independent: once per suite, in the native pass.
if (ENGINE === 'native') {
  test('tsc accepts test/types/expect.ts against dist/types (every @ts-expect-error line an error)', () => {
    const res = spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}test/types/tsconfig.json`], { encoding: 'utf8' });
    assert.is(res.status, 0, res.stdout + res.stderr);
  });
}

test.run();
