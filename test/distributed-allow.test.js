// A worker's --allow list: only the listed programs, compared by real path
// after the worker's own PATH lookup; a symlink or `..` to another binary,
// or a program of the same name elsewhere on PATH, is refused EPERM.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AllowList, AllowListError } from '../dist/distributed.js';
import { tmpBase } from './_support.js';

const dir = join(tmpBase, 'allow');
mkdirSync(join(dir, 'bin'), { recursive: true });
copyFileSync('/bin/echo', join(dir, 'bin', 'true'));
symlinkSync(realpathSync('/bin/true'), join(dir, 'true-link'));
symlinkSync('/bin/sh', join(dir, 'sh-link'));
const TRUE = realpathSync('/bin/true');

test('listed programs run, by absolute path, bare name on PATH, symlink or relative path to them', () => {
  const allow = AllowList.from(['/bin/true', '/usr/bin/env']);
  for (const [program, path, cwd] of [
    ['/bin/true', undefined, '/'], ['true', '/usr/bin:/bin', '/'], [join(dir, 'true-link'), undefined, '/'],
    ['../../bin/true', undefined, '/usr/lib'], ['env', '/usr/bin', '/'],
  ]) {
    const v = allow.check(program, path, cwd);
    assert.ok(v.ok, `${program}: ${v.message}`);
  }
  // The worker runs what was checked: the file found on its PATH.
  assert.equal(allow.check('true', '/usr/bin:/bin', '/'), { ok: true, file: existsSync('/usr/bin/true') ? '/usr/bin/true' : '/bin/true' });
});

test('anything else is EPERM naming the program and what it resolves to; a missing one ENOENT', () => {
  const allow = AllowList.from(['/bin/true']);
  const sh = allow.check(join(dir, 'sh-link'), undefined, '/');
  assert.equal([sh.ok, sh.code], [false, 'EPERM']);
  assert.match(sh.message, `${join(dir, 'sh-link')} (${realpathSync('/bin/sh')}) is not among the programs this worker may run`);
  // The same name earlier on a PATH the job might have chosen.
  const shadow = allow.check('true', `${join(dir, 'bin')}:/bin`, '/');
  assert.equal([shadow.ok, shadow.code], [false, 'EPERM']);
  assert.match(shadow.message, join(dir, 'bin', 'true'));
  const missing = allow.check('no-such-program', '/bin', '/');
  assert.equal([missing.ok, missing.code], [false, 'ENOENT']);
});

test('--allow-file: one path a line, comments and blank lines; bad entries refused up front', () => {
  const file = join(dir, 'allowed');
  writeFileSync(file, '# programs of the batch\n/bin/true   # the usual\n\n  /usr/bin/env\n');
  const allow = AllowList.from([], [file]);
  assert.equal(allow.entries, ['/bin/true', '/usr/bin/env']);
  assert.ok(allow.check('/usr/bin/env', undefined, '/').ok);
  assert.is(allow.check('/bin/sh', undefined, '/').ok, false);
  assert.throws(() => AllowList.from(['true']), (e) => e instanceof AllowListError && e.code === 'EINVAL' && /absolute path/.test(e.message));
  assert.throws(() => AllowList.from(['/no/such/program']), (e) => e instanceof AllowListError && /ENOENT/.test(e.message));
  assert.throws(() => AllowList.from([], [join(dir, 'missing-file')]), (e) => e instanceof AllowListError && /cannot read the allow file/.test(e.message));
});

test.run();
