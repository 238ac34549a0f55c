// The package as npm ships it: `npm pack` holds the sources, dist/ and what
// `npm install` needs to build the addon, no build tree and no prebuilt
// binary; installed into an empty project, it builds the addon and runs a
// command on the native engine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE, tmpBase } from './_support.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });

// Once per suite (it does not depend on the engine under test): in the native pass.
if (ENGINE === 'native') {
  test('npm pack: sources, dist and the addon\'s build inputs; installed, it builds the addon and runs a command', () => {
    const out = join(tmpBase, 'pack');
    mkdirSync(out);
    // --ignore-scripts: the suite's own build is what gets packed.
    const [info] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', out], root));
    const files = info.files.map((f) => f.path);
    for (const needed of ['package.json', 'dist/index.js', 'dist/worker.js', 'dist/cli.js', 'dist/types/main/index.d.ts',
      'scripts/build-native.mjs', 'src/worker/native/binding.gyp', 'src/worker/native/spawn.c', 'src/worker/native/exec-helper.c']) {
      assert.ok(files.includes(needed), `${needed} is packed`);
    }
    assert.equal(files.filter((f) => f.includes('/build/') || f.endsWith('.node') || f.endsWith('.o') || f.startsWith('test/')), []);

    const app = join(tmpBase, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--no-audit', '--no-fund', '--prefer-offline', join(out, info.filename)], app);
    assert.equal(readdirSync(join(app, 'node_modules/spawnpool/dist/native')).sort(), ['spawnpool-exec-helper', 'spawnpool_native.node']);
    const script = `import { Command } from 'spawnpool';
      process.on('warning', (w) => { console.log('WARNING', w.code); });
      const r = await new Command('/bin/echo', 'from', 'the tarball').captureOutput().run();
      console.log(r.stdout.trim());`;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' });
    assert.is(res.status, 0, res.stderr);
    assert.is(res.stdout, 'from the tarball\n');
    const cli = spawnSync(join(app, 'node_modules/.bin/spawnpool'), ['run', '-k', '--', '/bin/echo', ':::', 'a', 'b'], { cwd: app, encoding: 'utf8' });
    assert.is(cli.stdout, 'a\nb\n', cli.stderr);
  });
}

test.run();
