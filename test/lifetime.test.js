// Children never outlive the host: not when it exits, throws, gets SIGINT or
// SIGTERM, nor when it is SIGKILLed (the native engine's parent-death
// signal). child_process cannot promise that: under the node engine the
// test checks the documented difference, then cleans up.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE, processState, tmpBase } from './_support.js';

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const host = join(tmpBase, 'host.mjs');
writeFileSync(host, `import { Command, SpawnPool } from ${JSON.stringify(entry)};
const pool = new SpawnPool({ threads: 1, engine: process.argv[2] });
const running = await new Command('/bin/sleep', 'infinity').runAsync({ pool });
process.stdout.write(\`\${running.pid}\\n\`);
const how = process.argv[3];
if (how === 'exit') process.exit(0);
if (how === 'throw') throw new Error('the host fails');
setInterval(() => {}, 1000); // wait for a signal
`);

/** Starts a host that runs `sleep infinity`; resolves with the host and the sleep's pid. */
async function startHost(how) {
  const child = spawn(process.execPath, [host, ENGINE, how], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const pid = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out));
    });
    child.once('exit', (code, signal) => reject(new Error(`host ended first: ${code ?? signal}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return { child, pid, exited };
}

/** Killed: gone, or a zombie waiting for init to reap it. */
const stopped = (pid) => processState(pid) !== 'alive';

async function untilStopped(pid) {
  while (!stopped(pid)) await new Promise((r) => setTimeout(r, 10));
}

for (const how of ['exit', 'throw', 'SIGINT', 'SIGTERM', 'SIGKILL']) {
  test(`a host that ${how === 'exit' || how === 'throw' ? how + 's' : 'gets ' + how} while its command runs`, async () => {
    const { child, pid, exited } = await startHost(how);
    // (An exiting host may already have taken it along.)
    if (how.startsWith('SIG')) {
      assert.is(processState(pid), 'alive');
      child.kill(how);
    }
    const ending = await exited;
    assert.is(ending, how === 'exit' ? 0 : how === 'throw' ? 1 : how);
    if (ENGINE === 'native') {
      await untilStopped(pid);
    } else {
      // child_process sets no parent-death signal: the command outlives its host.
      assert.is(processState(pid), 'alive');
      process.kill(pid, 'SIGKILL');
      await untilStopped(pid);
    }
  });
}

test.run();
