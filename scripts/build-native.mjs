// Builds the native engine (src/worker/native/, the sources binding.gyp lists) into
// dist/native/spawnpool_native.node, and its exec helper
// (src/worker/native/exec-helper.c, for daemonize() and requireHandshake())
// into dist/native/spawnpool-exec-helper, without touching the network.
//
// node-gyp when one is installed (this package's, or the copy bundled with
// npm) and Node's headers are on disk; otherwise, or if it fails, the C
// compiler directly: the addon is a few C files with no dependency but the
// headers. A failed build is not an error (the child_process engine is the
// fallback) unless --strict. --asan builds with AddressSanitizer, with cc.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const srcDir = join(root, 'src/worker/native');
const outFile = join(root, 'dist/native/spawnpool_native.node');
const helperFile = join(root, 'dist/native/spawnpool-exec-helper');
const strict = process.argv.includes('--strict');
// npm's install step: in a checkout (no dist/ yet) build.mjs builds it all
// later; in an installed package, dist/ came packed and only the addon is built here.
if (process.argv.includes('--if-packed') && !existsSync(join(root, 'dist/index.js'))) process.exit(0);
const asan = process.argv.includes('--asan');
const CFLAGS = ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-fvisibility=hidden'];
/** The addon's sources: binding.gyp's list, for cc too. */
const SOURCES = JSON.parse(readFileSync(join(srcDir, 'binding.gyp'), 'utf8')).targets[0].sources;

class BuildError extends Error {}

function run(file, args, cwd = root) {
  try {
    return execFileSync(file, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (err.code === 'ENOENT') throw new BuildError(`${file} not found`);
    const output = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    // The compiler's first error says more than "exit code 2".
    const line = output.split('\n').find((l) => /\berror\b/.test(l)) ?? err.message.split('\n')[0];
    throw new BuildError(line.trim(), { cause: output });
  }
}

/** A Node install prefix whose include/node has the headers (what node-gyp calls nodedir). */
function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, join(dirname(process.execPath), '..'), '/usr', '/usr/local'];
  return candidates.find((dir) => dir && existsSync(join(dir, 'include/node/node_api.h')));
}

function nodeGyp() {
  const candidates = [
    join(root, 'node_modules/node-gyp/bin/node-gyp.js'),
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  return candidates.find((file) => existsSync(file));
}

function buildWithNodeGyp(gyp, dir) {
  // An explicit --nodedir: node-gyp then never downloads headers.
  run(process.execPath, [gyp, 'rebuild', '--directory', srcDir, `--nodedir=${dir}`]);
  return join(srcDir, 'build/Release/spawnpool_native.node');
}

function buildWithCc(dir) {
  const out = join(srcDir, 'build/cc/spawnpool_native.node');
  mkdirSync(dirname(out), { recursive: true });
  const sanitize = asan ? ['-fsanitize=address', '-fno-omit-frame-pointer', '-g'] : [];
  run(process.env.CC || 'cc', [...CFLAGS, ...sanitize, '-shared', '-fPIC', '-pthread',
    `-I${join(dir, 'include/node')}`, '-o', out, ...SOURCES.map((f) => join(srcDir, f))]);
  return out;
}

function build() {
  if (process.platform !== 'linux') throw new BuildError(`it needs Linux, this is ${process.platform}`);
  const dir = nodeDir();
  if (!dir) throw new BuildError('no Node headers (include/node/node_api.h) found; set npm_config_nodedir');
  const gyp = asan ? undefined : nodeGyp();
  let built;
  if (gyp) {
    try {
      built = { file: buildWithNodeGyp(gyp, dir), how: 'node-gyp' };
    } catch (err) {
      if (strict) console.error(`node-gyp failed (${err.message.split('\n')[0]}); trying cc`);
    }
  }
  built ??= { file: buildWithCc(dir), how: asan ? 'cc, AddressSanitizer' : 'cc' };

  // Still .node: require() picks the loader by extension.
  const tmp = join(dirname(outFile), 'spawnpool_native.tmp.node');
  mkdirSync(dirname(outFile), { recursive: true });
  copyFileSync(built.file, tmp);
  try {
    // A build that compiles but cannot load (a missing symbol) is no build.
    // An ASan build only loads with libasan preloaded: not checked here.
    if (!asan) run(process.execPath, ['-e', `require(${JSON.stringify(tmp)})`]);
    renameSync(tmp, outFile);
  } finally {
    rmSync(tmp, { force: true });
  }
  return built.how;
}

/** The exec helper: a plain program, always with cc. Without it, only daemonize() and requireHandshake() are missing (ENOTSUP). */
function buildHelper() {
  const sanitize = asan ? ['-fsanitize=address', '-fno-omit-frame-pointer', '-g'] : [];
  const tmp = `${helperFile}.tmp`;
  mkdirSync(dirname(helperFile), { recursive: true });
  const cc = (extra) => run(process.env.CC || 'cc', ['-std=gnu11', '-O2', '-Wall', '-Wextra', ...sanitize, ...extra, '-o', tmp, join(srcDir, 'exec-helper.c')]);
  try {
    // Static when the libc allows it: no dynamic loader to run, about half
    // of the helper's cost per spawn. It calls nothing that needs NSS.
    try {
      if (asan) throw new BuildError('no static ASan');
      cc(['-static']);
    } catch {
      cc([]);
    }
    renameSync(tmp, helperFile);
  } finally {
    rmSync(tmp, { force: true });
  }
}

try {
  const how = build();
  console.log(`spawnpool: native engine built with ${how}: ${outFile}`);
  try {
    buildHelper();
    console.log(`spawnpool: exec helper built: ${helperFile}`);
  } catch (err) {
    if (strict && err.cause) console.error(err.cause);
    console.error(`spawnpool: exec helper not built (${err.message}); daemonize() and requireHandshake() will fail with ENOTSUP`);
    if (strict) process.exitCode = 1;
  }
} catch (err) {
  if (strict && err.cause) console.error(err.cause);
  console.error(`spawnpool: native engine not built (${err.message}); the child_process engine will be used`);
  process.exitCode = strict ? 1 : 0;
}
