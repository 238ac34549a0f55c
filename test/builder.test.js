import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSync, readFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from '../dist/index.js';
import { helper, tmpBase, throwsWith } from './_support.js';

test('toString quotes only where a POSIX shell needs it (virCommandToString)', () => {
  const cmd = new Command('true', 'F', 'G  H').envPair('A', 'B').envPair('C', 'D  E');
  assert.is(cmd.toString(), "A=B C='D  E' true F 'G  H'");
  const odd = new Command('/bin/echo', '', "it's", '$HOME', 'a=b', '50%', 'x,y', 'tab\there', '*', 'é');
  assert.is(odd.toString(), "/bin/echo '' 'it'\\''s' '$HOME' a=b 50% x,y 'tab\there' '*' é");
});

test('toString with linebreaks: libvirt\'s test26, exactly', () => {
  const cmd = new Command('true').envPair('A', 'B').envPair('C', 'D  E').args('--foo', 'bar', '--oooh', '-f', '--wizz', 'eek eek',
    '--m-m-m-multiarg', 'arg', 'arg2', '-w', '-z', '-l', '--mmm', 'flash', 'bang', 'wallop');
  assert.is(cmd.toString({ linebreaks: true }), 'A=B \\\n' + "C='D  E' \\\n" + 'true \\\n' + '--foo bar \\\n' + '--oooh \\\n' +
    '-f \\\n' + "--wizz 'eek eek' \\\n" + '--m-m-m-multiarg arg arg2 \\\n' + '-w \\\n' + '-z \\\n' + '-l \\\n' +
    '--mmm flash \\\n' + 'bang \\\n' + 'wallop');
  // Positionals before any option get a line each.
  assert.is(new Command('cp', 'a', 'b', '-r').toString({ linebreaks: true }), 'cp \\\na \\\nb \\\n-r');
});

test('toString with linebreaks keeps an option with its value', () => {
  const cmd = new Command('/usr/bin/qemu', '-name', 'guest=g1', '-S', '-m', '512', 'disk.img', 'other', '--flag', '--opt', 'v w')
    .envPair('LC_ALL', 'C').envPair('HOME', '/var/lib x');
  assert.is(
    cmd.toString({ linebreaks: true }),
    [
      'LC_ALL=C \\',
      "HOME='/var/lib x' \\",
      '/usr/bin/qemu \\',
      '-name guest=g1 \\',
      '-S \\',
      '-m 512 disk.img other \\',
      '--flag \\',
      "--opt 'v w'",
    ].join('\n'),
  );
  assert.is(cmd.toString({ stripPath: true }), "LC_ALL=C HOME='/var/lib x' qemu -name guest=g1 -S -m 512 disk.img other --flag --opt 'v w'");
});

test('inheriting commands print no env', () => {
  assert.is(new Command('ls', '-l').toString(), 'ls -l');
});

test('arguments: arg, argPair, argFormat, args (variadic and array), numbers and bigints', () => {
  const cmd = new Command('prog', 1)
    .arg('')
    .arg(42)
    .arg(-1.5)
    .arg(2n ** 70n)
    .argPair('--conf-file', '/etc/x.conf')
    .argFormat('%d-%s', 7, 'x')
    .args('a', 'b')
    .args(['c', 3])
    .args();
  assert.equal(cmd.getArgList(), ['1', '', '42', '-1.5', '1180591620717411303424', '--conf-file=/etc/x.conf', '7-x', 'a', 'b', 'c', '3']);
  // getArgList returns a copy.
  cmd.getArgList().push('z');
  assert.is(cmd.getArgList().length, 11);
});

test('Command.fromArgv takes argv[0] as the binary', () => {
  const cmd = Command.fromArgv(['/usr/bin/dnsmasq', '--domain', 'localdomain']);
  assert.is(cmd.toString(), '/usr/bin/dnsmasq --domain localdomain');
  assert.equal(cmd.getArgList(), ['--domain', 'localdomain']);
});

test('env: setting a name again replaces it in place; envString; envXDG; envClear', () => {
  const cmd = new Command('x').envPair('A', '1').envString('B=2=3').envPair('A', '4').envXDG('/home/u');
  assert.is(cmd.toString(), 'A=4 B=2=3 XDG_DATA_HOME=/home/u/.local/share XDG_CACHE_HOME=/home/u/.cache XDG_CONFIG_HOME=/home/u/.config x');
  cmd.envClear().envPair('Z', '');
  assert.is(cmd.toString(), "Z='' x");
});

test('envPassCommon: LC_ALL=C, then the usual variables where set, read when called', () => {
  const saved = { ...process.env };
  try {
    for (const k of ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'PATH', 'HOME', 'USER', 'LOGNAME', 'TMPDIR']) delete process.env[k];
    Object.assign(process.env, { PATH: '/bin:/usr/bin', HOME: '/root', LOGNAME: 'me', OTHER: 'no' });
    const cmd = new Command('x').envPassCommon();
    process.env.HOME = '/changed';
    assert.is(cmd.toString(), 'LC_ALL=C PATH=/bin:/usr/bin HOME=/root LOGNAME=me x');
  } finally {
    for (const k of Object.keys(process.env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('envPass: set variables pass, unset ones do not, and inheritance is off either way', () => {
  process.env.SPAWNPOOL_T_DISPLAY = ':0';
  delete process.env.SPAWNPOOL_T_NOPE;
  try {
    assert.is(new Command('x').envPass('SPAWNPOOL_T_DISPLAY').envPass('SPAWNPOOL_T_NOPE').toString(), 'SPAWNPOOL_T_DISPLAY=:0 x');
    assert.is(new Command('x').envPass('SPAWNPOOL_T_NOPE').toString(), 'x');
  } finally {
    delete process.env.SPAWNPOOL_T_DISPLAY;
  }
});

test('writeArgLog writes the one-line form to an fd or a Writable', () => {
  const cmd = new Command('echo', 'a b').envPair('K', 'v');
  const path = join(tmpBase, 'arglog');
  const fd = openSync(path, 'w');
  cmd.writeArgLog(fd);
  closeSync(fd);
  assert.is(readFileSync(path, 'utf8'), "K=v echo 'a b'\n");
  const chunks = [];
  cmd.writeArgLog(new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } }));
  assert.equal(chunks, ["K=v echo 'a b'\n"]);
  throwsWith(() => cmd.writeArgLog({}), 'EINVAL');
  throwsWith(() => cmd.writeArgLog(-1), 'EINVAL');
});

test('binaryPath resolves a bare name on PATH, and a relative path against the cwd', () => {
  const h = helper('bp');
  const saved = process.env.PATH;
  process.env.PATH = `/nonexistent:${h.dir}`;
  try {
    assert.is(new Command(h.name).binaryPath(), h.path);
    assert.is(new Command('./x/y').binaryPath(), join(process.cwd(), 'x/y'));
    const err = throwsWith(() => new Command('spawnpool-no-such-binary').binaryPath(), 'ENOENT');
    assert.match(err.message, /spawnpool-no-such-binary/);
  } finally {
    process.env.PATH = saved;
  }
});

test('bad input: CommandError EINVAL at the builder call, naming what was wrong', () => {
  const cases = [
    [() => new Command('a\0b'), /binary contains a NUL byte/],
    [() => new Command(''), /binary must be a non-empty string/],
    [() => new Command(undefined), /binary must be a non-empty string/],
    [() => new Command('x').arg('a\0'), /argument contains a NUL byte/],
    [() => new Command('x').arg({}), /argument must be a string.*object/],
    [() => new Command('x').arg(null), /argument must be a string.*null/],
    [() => new Command('x').arg(NaN), /argument must be a string.*NaN/],
    [() => new Command('x').arg(true), /argument must be a string.*boolean/],
    [() => new Command('x', 'ok', Symbol('s')), /argument 1 must be a string.*symbol/],
    [() => new Command('x').args(['ok', []]), /argument 1 must be a string.*array/],
    [() => new Command('x').argPair('a\0', 'b'), /name contains a NUL byte/],
    [() => new Command('x').argFormat(5), /format must be a string/],
    [() => new Command('x').argFormat('%s', 'a\0'), /NUL byte/],
    [() => new Command('x').envPair('A=B', 'c'), /variable name "A=B" contains '='/],
    [() => new Command('x').envPair('', 'c'), /variable name is empty/],
    [() => new Command('x').envPair('A\0', 'c'), /NUL byte/],
    [() => new Command('x').envPair('A', 'c\0'), /value of A contains a NUL byte/],
    [() => new Command('x').envPair('A', {}), /value of A must be/],
    [() => new Command('x').envPair(3, 'c'), /variable name must be a string/],
    [() => new Command('x').envString('NOEQUALS'), /"NOEQUALS" has no '='/],
    [() => new Command('x').envString('=v'), /variable name is empty/],
    [() => new Command('x').envString(7), /entry must be a string/],
    [() => new Command('x').envPass('A=B'), /contains '='/],
    [() => new Command('x').passFd(-1), /fd must be an integer >= 3/],
    [() => new Command('x').passFd(1), /fd must be an integer >= 3/],
    [() => new Command('x').passFd(3.5), /fd must be an integer/],
    [() => new Command('x').passFd('3'), /fd must be an integer/],
    [() => new Command('x').inputFd(-2), /fd must be an integer >= 0/],
    [() => new Command('x').outputFd(1.2), /fd must be an integer/],
    [() => new Command('x').errorFd(NaN), /fd must be an integer/],
    [() => new Command('x').inputBuffer(12), /data must be a string or a Uint8Array/],
    [() => new Command('x').inputBuffer('a').inputFd(0), /stdin is already wired as buffer/],
    [() => new Command('x').inputFd(0).inputBuffer('a'), /stdin is already wired as fd/],
    [() => new Command('x').captureOutput().outputFd(1), /stdout is already wired as capture/],
    [() => new Command('x').errorFd(2).captureError(), /stderr is already wired as fd/],
    [() => new Command('x').captureError().captureCombined(), /stderr is already wired as capture/],
    [() => new Command('x').captureCombined().captureOutput(), /stdout is already wired as combined/],
    [() => new Command('x').captureOutput({ encoding: 'klingon' }), /unknown encoding "klingon"/],
    [() => new Command('x').captureOutput(null), /options must be an object/],
    [() => new Command('x').maxBuffer(0), /byte count must be a positive integer/],
    [() => new Command('x').cwd(''), /directory must be a non-empty string/],
    [() => new Command('x').envXDG(5), /baseDir must be a non-empty string/],
    [() => Command.fromArgv([]), /argv must be a non-empty array/],
    [() => Command.fromArgv('ls'), /argv must be a non-empty array/],
  ];
  for (const [fn, message] of cases) {
    const err = throwsWith(fn, 'EINVAL');
    assert.match(err.message, message);
    assert.ok(err instanceof Error);
  }
});

test('a rejected call leaves the command unchanged', () => {
  const cmd = new Command('x', 'a').captureOutput();
  throwsWith(() => cmd.args(['b', {}]), 'EINVAL');
  throwsWith(() => cmd.captureCombined(), 'EINVAL');
  assert.equal(cmd.getArgList(), ['a']);
  assert.is(cmd.toString(), 'x a');
});

test.run();
