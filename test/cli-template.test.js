// `spawnpool run -- CMD ...`: GNU parallel's templates, sources and output
// grouping, byte for byte, through the CLI as a real process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, dir, jsonLines } from './_cli.js';

const lines = (text) => text.split('\n').filter(Boolean);

test('every replacement string, in order with -k', () => {
  const res = cli(['run', '-k', '-j', '2', '--', '/bin/echo', '{}', '{.}', '{/}', '{//}', '{/.}', '{#}', 'x{}y',
    ':::', 'a.txt', 'dir.d/b.tar.gz', 'plain', '/abs']);
  assert.is(res.status, 0, res.stderr);
  assert.is(res.stdout, [
    'a.txt a a.txt . a 1 xa.txty',
    'dir.d/b.tar.gz dir.d/b.tar b.tar.gz dir.d b.tar 2 xdir.d/b.tar.gzy',
    'plain plain plain . plain 3 xplainy',
    '/abs /abs abs  abs 4 x/absy',
  ].join('\n') + '\n');
});

test('a template without replacement strings gets the arguments appended, each one argv element', () => {
  // One word with spaces and quotes stays one word: never a shell.
  const res = cli(['run', '-k', '--', '/usr/bin/printf', '[%s]\\n', ':::', 'two words', "it's", '$HOME', '']);
  assert.is(res.status, 0, res.stderr);
  assert.is(res.stdout, "[two words]\n[it's]\n[$HOME]\n[]\n");
});

test('two sources combine as a product, first outermost; --link and :::+ pair them, the shorter recycled', () => {
  assert.is(cli(['run', '-k', '--', '/bin/echo', '{1}-{2}', '{}', ':::', 'a', 'b', ':::', 'x', 'y']).stdout, 'a-x a x\na-y a y\nb-x b x\nb-y b y\n');
  assert.is(cli(['run', '-k', '--link', '--', '/bin/echo', '{1}{2}', ':::', 'a', 'b', 'c', ':::', 'x', 'y']).stdout, 'ax\nby\ncx\n');
  assert.is(cli(['run', '-k', '--', '/bin/echo', '{1}{2}', ':::', 'a', 'b', ':::+', 'x', 'y']).stdout, 'ax\nby\n');
  const bad = cli(['run', '--', '/bin/echo', '{3}', ':::', 'a', ':::', 'b']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /\{3\} in "\{3\}": there are 2 input sources/);
});

test('arguments from stdin lines, from :::: FILE and from -a FILE; {%} is the slot', () => {
  const d = dir();
  const file = join(d, 'args');
  writeFileSync(file, 'one\ntwo\n');
  assert.is(cli(['run', '-k', '--', '/bin/echo', 'got'], { input: 'a\nb\r\nc' }).stdout, 'got a\ngot b\ngot c\n');
  assert.is(cli(['run', '-k', '--', '/bin/echo', '{}', ':::', 'x', '::::', file]).stdout, 'x one\nx two\n');
  assert.is(cli(['run', '-k', '-a', file, '--', '/bin/echo', '<{}>']).stdout, '<one>\n<two>\n');
  assert.is(cli(['run', '-j', '1', '--', '/bin/echo', '{%}', ':::', 'a', 'b', 'c']).stdout, '1\n1\n1\n');
  const slots = lines(cli(['run', '-j', '3', '--', '/bin/sh', '-c', 'sleep 0.1; echo {%}', ':::', 'a', 'b', 'c']).stdout).sort();
  assert.equal(slots, ['1', '2', '3']);
  assert.is(cli(['run', '::::', join(d, 'missing'), '--', '/bin/echo']).status, 2);
  const missing = cli(['run', '--', '/bin/echo', '::::', join(d, 'missing')]);
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /ENOENT/);
});

test('without --, as with GNU parallel: the command starts at the first word that is no option and no JSONL file', () => {
  // -n belongs to echo: options after the command are the command's.
  assert.is(cli(['run', '-k', '-j', '2', 'echo', '-n', '<{}>', ':::', 'a', 'b']).stdout, '<a><b>');
  assert.is(cli(['run', '-k', 'echo'], { input: 'x.log\ny.log\n' }).stdout, 'x.log\ny.log\n');
  const missing = cli(['run', 'no-such-program-here', ':::', 'a']);
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /no-such-program-here: no such input file or program/);
  // A JSONL file is still read as jobs, with options after it.
  const d = dir();
  const jobs = join(d, 'jobs.jsonl');
  writeFileSync(jobs, '["/bin/echo", "from the file"]\n');
  assert.is(cli(['run', jobs, '-j', '1']).stdout, 'from the file\n');
});

test('grouped output: each job\'s lines in one block, never interleaved; -k keeps input order', () => {
  // Each job writes three lines with pauses between them: ungrouped, they would interleave.
  const job = ['/bin/sh', '-c', 'for i in 1 2 3; do echo {}$i; sleep 0.02; done; echo {}e >&2'];
  const res = cli(['run', '-j', '4', '--', ...job, ':::', 'a', 'b', 'c', 'd']);
  assert.is(res.status, 0, res.stderr);
  const out = lines(res.stdout);
  assert.is(out.length, 12);
  for (let i = 0; i < 12; i += 3) {
    const name = out[i][0];
    assert.equal(out.slice(i, i + 3), [`${name}1`, `${name}2`, `${name}3`]);
  }
  assert.equal(lines(res.stderr).filter((l) => /^[a-d]e$/.test(l)).sort(), ['ae', 'be', 'ce', 'de']);
  // The first job takes longest: without -k it comes last, with -k first.
  const slow = ['/bin/sh', '-c', 'sleep $1; echo $1', 'sh'];
  assert.equal(lines(cli(['run', '-j', '3', '--', ...slow, ':::', '0.3', '0.1', '0']).stdout), ['0', '0.1', '0.3']);
  assert.equal(lines(cli(['run', '-k', '-j', '3', '--', ...slow, ':::', '0.3', '0.1', '0']).stdout), ['0.3', '0.1', '0']);
});

test('--tag prefixes every line with the arguments; -u hands the jobs spawnpool\'s own stdout', () => {
  const res = cli(['run', '-k', '--tag', '--', '/bin/sh', '-c', 'printf "1\\n2\\nno newline"; echo e >&2', ':::', 'a b', 'c']);
  assert.is(res.stdout, 'a b\t1\na b\t2\na b\tno newlinec\t1\nc\t2\nc\tno newline');
  assert.match(res.stderr, /^a b\te\nc\te\n/);
  const u = cli(['run', '-u', '-j', '1', '--', '/bin/sh', '-c', 'echo out {}; echo err {} >&2', ':::', 'a', 'b']);
  assert.is(u.stdout, 'out a\nout b\n');
  assert.match(u.stderr, /^err a\nerr b\n/);
  // A JSONL job is tagged with its id.
  assert.is(cli(['run', '--tag', '-'], { input: '{"id": "j1", "argv": ["/bin/echo", "hi"]}\n' }).stdout, 'j1\thi\n');
});

test('--dry-run prints the command lines, shell-quoted, and runs nothing', () => {
  const d = dir();
  const made = join(d, 'made');
  const res = cli(['run', '--dry-run', '--joblog', join(d, 'log'), '--', '/bin/touch', `${made}-{}`, ':::', 'a b', "it's"]);
  assert.is(res.status, 0, res.stderr);
  assert.is(res.stdout, `/bin/touch '${made}-a b'\n/bin/touch '${made}-it'\\''s'\n`);
  assert.not.ok(existsSync(`${made}-a b`) || existsSync(join(d, 'log')));
  const jsonl = cli(['run', '--dry-run', '-'], { input: '{"argv": ["/bin/rm", "-rf", "/x y"], "env": {"A": "1"}, "cwd": "/tmp"}\n' });
  assert.is(jsonl.stdout, "cd /tmp && A=1 /bin/rm -rf '/x y'\n");
});

test('--capture: the bytes in the results, base64 with a flag when they are not UTF-8', () => {
  const d = dir();
  const results = join(d, 'results');
  const res = cli(['run', '-k', '--capture', '--results', results, '--', '/usr/bin/printf', '{}', ':::', 'h\\303\\251', '\\377\\376']);
  assert.is(res.status, 0, res.stderr);
  // Results come in the order jobs end: -k orders the output only.
  const [text, binary] = jsonLines(results).sort((a, b) => a.line - b.line);
  assert.equal([text.args, text.stdout, text.stdoutEncoding, text.stderr], [['h\\303\\251'], 'hé', undefined, '']);
  assert.equal([binary.stdout, binary.stdoutEncoding], [Buffer.from([0xff, 0xfe]).toString('base64'), 'base64']);
  // The terminal gets the very bytes.
  assert.equal(Buffer.from(cli(['run', '--', '/usr/bin/printf', '{}', ':::', '\\377\\376'], { encoding: 'buffer' }).stdout), Buffer.from([0xff, 0xfe]));
});

test.run();
