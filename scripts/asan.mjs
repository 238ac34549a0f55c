// The native engine's tests under AddressSanitizer (and LeakSanitizer).
//
//   node scripts/asan.mjs [uvu file pattern]
//
// 1. builds the ASan addon into dist/native (scripts/build-native.mjs --asan);
// 2. copies it, with the bundles (dist/*.js) and the test files, into a
//    private tree under the system tmpdir, and at once rebuilds the normal
//    addon into dist/native: an ASan addon only loads with libasan preloaded,
//    so nobody else's run may meet it there for longer than that;
// 3. runs the chosen test files from the private tree on the native engine,
//    with libasan preloaded into Node and, through the environment, into
//    every process the tests start (the swap and closed-stdio tests run the
//    addon in Node subprocesses too);
// 4. collects the sanitizer reports, one file per process that had one, and
//    prints a summary. Exits non-zero on a failed test, any AddressSanitizer
//    error, or a leak whose stack passes through spawn.c.
//
// Leaks elsewhere (Node's own at exit, /bin/sh's, the helper's) are counted
// and ignored: Node subprocesses that end by process.exit() or a throw
// (lifetime.test.js) leave hundreds of V8 allocations behind. LSan must not change a child's exit status (the helper leaks
// by design), so LSAN_OPTIONS=exitcode=0, which also keeps an ASan error
// from changing it: the report files are what count, not exit statuses.
// handle_segv/sigbus/sigfpe=0: otherwise every child would start with
// ASan's handlers installed, and the signal-state tests would see them.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// The files that spawn on the native engine, but pipes.test.js: ASan's
// quarantine and redzones break its bound on RSS growth. Name it to run it.
const pattern = process.argv[2] ?? '^(native|commandhelper|async|pool|status|storm|group|lifetime|attributes|daemon|handshake|send-buffer|worker-death)\\.test\\.js$';
const addon = join(root, 'dist/native/spawnpool_native.node');

function step(what) {
  console.log(`\n=== asan: ${what} ===`);
}
function node(args, opts = {}) {
  execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit', ...opts });
}

if (!['dist/index.js', 'dist/worker.js', 'test/helper/build/commandhelper', 'test/helper/build/no-close-range', 'test/helper/build/exec-helper-replaced'].every((f) => existsSync(join(root, f)))) {
  step('building the library and the test helper (node build.mjs --tests)');
  node(['build.mjs', '--tests']);
}
const libasan = execFileSync(process.env.CC || 'cc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
if (!libasan.startsWith('/') || !existsSync(libasan)) throw new Error(`libasan.so not found (cc says ${JSON.stringify(libasan)})`);

// ---- 1, 2: build, stage, restore ----------------------------------------------

const stage = mkdtempSync(join(tmpdir(), 'spawnpool-asan-'));
// Tests that run a child or a host under another uid must reach the tree.
chmodSync(stage, 0o755);
const reports = join(stage, 'reports');
step(`building the ASan addon; staging in ${stage}`);
try {
  node(['scripts/build-native.mjs', '--asan', '--strict']);
  mkdirSync(join(stage, 'dist/native'), { recursive: true });
  mkdirSync(join(stage, 'test'));
  mkdirSync(reports);
  copyFileSync(addon, join(stage, 'dist/native/spawnpool_native.node'));
  // The exec helper (daemonize, handshake), built with ASan too.
  const helperBin = join(root, 'dist/native/spawnpool-exec-helper');
  if (existsSync(helperBin)) {
    copyFileSync(helperBin, join(stage, 'dist/native/spawnpool-exec-helper'));
    chmodSync(join(stage, 'dist/native/spawnpool-exec-helper'), 0o755);
  }
} finally {
  step('rebuilding the normal addon into dist/native');
  node(['scripts/build-native.mjs', '--strict']);
}
for (const f of readdirSync(join(root, 'dist'))) if (f.endsWith('.js')) copyFileSync(join(root, 'dist', f), join(stage, 'dist', f));
for (const f of readdirSync(join(root, 'test'))) if (f.endsWith('.js')) copyFileSync(join(root, 'test', f), join(stage, 'test', f));
// A copy of the helper, not a link: tests compare /proc/PID/exe with its path,
// and it writes its logs beside itself. Packages resolve through the link.
mkdirSync(join(stage, 'test/helper/build'), { recursive: true });
for (const name of ['commandhelper', 'no-close-range', 'exec-helper-replaced']) {
  copyFileSync(join(root, `test/helper/build/${name}`), join(stage, `test/helper/build/${name}`));
  chmodSync(join(stage, `test/helper/build/${name}`), 0o755);
}
symlinkSync(join(root, 'node_modules'), join(stage, 'node_modules'));
// attr-table.test.js reads the TypeScript spec from the sources.
symlinkSync(join(root, 'src'), join(stage, 'src'));
writeFileSync(join(stage, 'package.json'), '{ "type": "module" }\n');

const env = {
  ...process.env,
  LD_PRELOAD: [libasan, process.env.LD_PRELOAD].filter(Boolean).join(' '),
  ASAN_OPTIONS: `detect_leaks=1:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:log_path=${reports}/report:log_exe_name=1`,
  LSAN_OPTIONS: 'exitcode=0',
  SPAWNPOOL_TEST_ENGINE: 'native',
  FORCE_COLOR: '0',
};
delete env.NODE_V8_COVERAGE;

// The staged addon must be the instrumented one, and load only with libasan.
const staged = join(stage, 'dist/native/spawnpool_native.node');
if (!readFileSync(staged).includes('__asan_init')) throw new Error(`${staged} is not instrumented`);
const probe = `require(${JSON.stringify(staged)}); process.stdout.write(String(require('fs').readFileSync('/proc/self/maps', 'utf8').includes('libasan')))`;
const loaded = execFileSync(process.execPath, ['-e', probe], { env, encoding: 'utf8' });
if (loaded !== 'true') throw new Error('the ASan addon did not load with libasan');
console.log(`instrumented addon loads with ${libasan}`);

// ---- 3: the tests ---------------------------------------------------------------

step(`running ${pattern} on the native engine under ASan`);
let out = '';
const code = await new Promise((resolve) => {
  const child = spawn(process.execPath, [join(root, 'node_modules/uvu/bin.js'), 'test', pattern], {
    cwd: stage, env, stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
  child.on('close', (status, signal) => resolve(signal ?? status));
});

// ---- 4: the reports ---------------------------------------------------------------

/**
 * A leak is ours when our C allocated it: walking up from the allocator,
 * the first frame past Node's N-API layer (napi_*, v8impl::) is in one of
 * our files (attrs.h's parsers allocate too).
 * V8 objects made on our behalf (a function napi_define_properties creates)
 * are V8's, and freed or not at exit as V8 sees fit.
 */
function ours(block) {
  const frames = block.match(/^\s+#\d+ 0x[0-9a-f]+ .*$/gm) ?? [];
  for (const frame of frames.slice(1)) {
    if (/(?:spawn|child|exec-helper)\.c:\d+|attrs\.h:\d+|spawnpool_native\.node/.test(frame)) return true;
    if (!/ in (napi_|v8impl::)/.test(frame)) return false;
  }
  return false;
}
const errors = [];
const leaksOurs = [];
const leaksOthers = new Map();
for (const file of readdirSync(reports)) {
  const text = readFileSync(join(reports, file), 'utf8');
  const exe = file.replace(/^report\./, '').replace(/\.\d+$/, '');
  if (/ERROR: AddressSanitizer/.test(text)) errors.push({ file, text });
  if (/ERROR: LeakSanitizer/.test(text)) {
    for (const block of text.split(/\n(?=(?:Direct|Indirect) leak of )/).slice(1)) {
      if (ours(block)) leaksOurs.push({ file, block });
      else leaksOthers.set(exe, (leaksOthers.get(exe) ?? 0) + 1);
    }
  }
}
for (const { file, text } of errors) console.log(`\n--- ${file} ---\n${text}`);
for (const { file, block } of leaksOurs) console.log(`\n--- leak through our C, ${file} ---\n${block}`);

const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
const others = [...leaksOthers].map(([exe, n]) => `${exe} ${n}`).join(', ') || 'none';
step('summary');
console.log(`tests: ${passed} passed, ${total - passed} failed${code === 0 ? '' : ` (uvu exit ${code})`}`);
console.log(`AddressSanitizer errors: ${errors.length}`);
console.log(`leaks through our C: ${leaksOurs.length}; other leak reports (not ours, ignored): ${others}`);
const ok = code === 0 && total > 0 && passed === total && errors.length === 0 && leaksOurs.length === 0;
console.log(ok ? 'asan: clean' : 'asan: FAILED');
if (ok) rmSync(stage, { recursive: true, force: true });
else console.log(`kept ${stage} for a look`);
process.exitCode = ok ? 0 : 1;
