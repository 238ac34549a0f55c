// Builds the package: esbuild bundles (library entry, worker entry, CLI),
// .d.ts files from tsc, and with --tests the C helper the tests run.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';

const root = new URL('.', import.meta.url).pathname;
const withTests = process.argv.includes('--tests');

rmSync(`${root}dist`, { recursive: true, force: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  packages: 'external',
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: { index: 'src/main/index.ts', worker: 'src/worker/entry.ts', cli: 'src/cli/main.ts', distributed: 'src/distributed/index.ts' },
  outdir: 'dist',
  absWorkingDir: root,
  // spawnpool/distributed runs its jobs on the library's own pools: one copy of it, shared.
  splitting: true,
  chunkNames: 'chunk-[hash]',
});
// The CLI runs through its shebang (esbuild keeps the entry's).
chmodSync(`${root}dist/cli.js`, 0o755);

execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.json`], { stdio: 'inherit' });

// The native engine; a failed build only warns (the pool falls back).
execFileSync(process.execPath, [`${root}scripts/build-native.mjs`], { stdio: 'inherit' });

if (withTests) {
  mkdirSync(`${root}test/helper/build`, { recursive: true });
  const cc = (out, ...args) => execFileSync('cc', ['-std=gnu11', '-O2', '-g', '-Wall', '-Wextra', '-Werror',
    '-o', `${root}test/helper/build/${out}`, ...args], { stdio: 'inherit' });
  for (const name of ['commandhelper', 'no-close-range']) cc(name, `${root}test/helper/${name}.c`);
  // The exec helper with a file replaced between its open and its lock of the pidfile.
  cc('exec-helper-replaced', '-Wl,--wrap=fcntl', `${root}src/worker/native/exec-helper.c`, `${root}test/helper/replace-pidfile.c`);
}
