// The process attributes have one list, in src/worker/native/attrs.h. Here:
// that list (the addon's attributeTable()) against the TypeScript spec, read
// from the sources with the TypeScript compiler, so that neither side can
// gain or lose an attribute alone; then every attribute round-trips through
// both front ends of the one C parser, the addon's (from a JS object) and the
// exec helper's (from its argv), to the same values, and both refuse the
// same out-of-range values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const addon = createRequire(import.meta.url)(fileURLToPath(new URL('../dist/native/spawnpool_native.node', import.meta.url)));
const EXEC_HELPER = fileURLToPath(new URL('../dist/native/spawnpool-exec-helper', import.meta.url));
const table = addon.attributeTable();
const names = table.map((e) => e.name);

/** The declaration `name` of a source file under src/. */
function declaration(file, name) {
  const path = fileURLToPath(new URL(`../src/${file}`, import.meta.url));
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest);
  const found = source.statements.find((s) => s.name?.text === name);
  assert.ok(found, `${name} in ${file}`);
  return found;
}
const members = (node) => node.members.map((m) => m.name.text);

// Keys of ProcessAttributes; those only the exec helper applies (HelperAttributes); SpawnFlags' own.
const specKeys = members(declaration('shared/spec.ts', 'ProcessAttributes'));
const helperOnly = declaration('shared/native-addon.ts', 'HelperAttributes').type.types.map((t) => t.literal.text);
const flagsOwn = members(declaration('shared/native-addon.ts', 'SpawnFlags'));

test('the C table holds every attribute of ProcessAttributes the C side applies, and nothing the spec lacks', () => {
  assert.ok(names.length >= 12, names.join());
  assert.is(new Set(names).size, names.length, 'a name twice');
  for (const key of specKeys) {
    if (helperOnly.includes(key)) assert.not.ok(names.includes(key), `${key} is the helper's own, yet in attrs.h`);
    else assert.ok(names.includes(key), `ProcessAttributes.${key} is missing from attrs.h's PROC_ATTRS`);
  }
  for (const name of names) {
    assert.ok(specKeys.includes(name) || flagsOwn.includes(name), `attrs.h's ${name} is neither in ProcessAttributes nor a SpawnFlags field`);
  }
  // In the spec's order: the order the table, and so the helper's argv, lists them.
  assert.equal(names.filter((n) => specKeys.includes(n)), specKeys.filter((k) => names.includes(k)));
});

test('each entry has a kind, a range and the step its failure names', () => {
  for (const { name, kind, min, max, step } of table) {
    assert.ok(['rlimit', 'int', 'bool', 'list'].includes(kind), `${name}: ${kind}`);
    assert.ok(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max, `${name}: ${min}..${max}`);
    assert.ok(typeof step === 'string' && step.length > 0 && step !== 'spawn', `${name}: ${step}`);
    if (kind === 'rlimit') assert.match(step, /^setrlimit\(RLIMIT_[A-Z]+\)$/);
    if (kind === 'bool') assert.equal([min, max], [0, 1]);
  }
  const step = (n) => table.find((e) => e.name === n).step;
  assert.is(step('maxFiles'), 'setrlimit(RLIMIT_NOFILE)');
  assert.is(step('uid'), 'setreuid');
  assert.is(step('noNewPrivileges'), 'prctl(PR_SET_NO_NEW_PRIVS)');
});

/** The values to round-trip, per kind: both ends of the range and one inside. */
function samples({ kind, min, max }) {
  const mid = min + Math.floor((max - min) / 3);
  if (kind === 'bool') return [true];
  if (kind === 'list') return [[], [min], [max, mid, min]];
  return [min, mid, max];
}
/** Values either front end must refuse, as JS values. */
function outOfRange({ kind, min, max }) {
  if (kind === 'bool') return [];
  const bad = [min - 1, max + 1, min + 0.5];
  return kind === 'list' ? bad.map((v) => [min, v]) : bad;
}
const line = (name, value) => `${name} ${Array.isArray(value) ? value.join(',') : Number(value)}\n`;
const helperArgs = ({ name, kind }, value) => (kind === 'bool' ? [`--${name}`] : [`--${name}`, Array.isArray(value) ? value.join(',') : String(value)]);
function helperParse(args) {
  const r = spawnSync(EXEC_HELPER, [...args, '--print-attributes'], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout };
}

test('every attribute round-trips through the addon\'s parser and the exec helper\'s, to the same values', () => {
  for (const entry of table) {
    for (const value of samples(entry)) {
      assert.is(addon.parsedAttributes({ [entry.name]: value }), line(entry.name, value), `addon: ${entry.name} ${value}`);
      assert.equal(helperParse(helperArgs(entry, value)), { status: 0, stdout: line(entry.name, value) }, `helper: ${entry.name} ${value}`);
    }
  }
  // All at once, in the table's order, whatever order they were given in.
  const all = Object.fromEntries(table.map((e) => [e.name, samples(e).at(-1)]));
  const expected = table.map((e) => line(e.name, all[e.name])).join('');
  assert.is(addon.parsedAttributes(Object.fromEntries(Object.entries(all).reverse())), expected);
  assert.equal(helperParse(table.toReversed().flatMap((e) => helperArgs(e, all[e.name]))), { status: 0, stdout: expected });
  // Nothing given, or false: nothing applied.
  assert.is(addon.parsedAttributes({}), '');
  assert.is(addon.parsedAttributes(Object.fromEntries(table.filter((e) => e.kind === 'bool').map((e) => [e.name, false]))), '');
  assert.equal(helperParse([]), { status: 0, stdout: '' });
});

test('both front ends refuse what is out of range or of the wrong type', () => {
  for (const entry of table) {
    for (const value of outOfRange(entry)) {
      assert.throws(() => addon.parsedAttributes({ [entry.name]: value }),
        (err) => err instanceof RangeError && err.message.startsWith(`${entry.name} must be`), `addon: ${entry.name} ${value}`);
      assert.equal(helperParse(helperArgs(entry, value)), { status: 125, stdout: '' }, `helper: ${entry.name} ${value}`);
    }
    const wrong = entry.kind === 'bool' ? 1 : entry.kind === 'list' ? 'x' : String(entry.min);
    assert.throws(() => addon.parsedAttributes({ [entry.name]: wrong }),
      (err) => err instanceof TypeError && err.message.startsWith(`${entry.name} must be`), `addon: ${entry.name} ${JSON.stringify(wrong)}`);
    if (entry.kind !== 'bool') assert.is(helperParse([`--${entry.name}`, 'x']).status, 125, `helper: --${entry.name} x`);
  }
});

test.run();
