import { spawn, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { signalNumber, encodeExit, encodeSignal } from '../../shared/status.js';
import { SpawnFailure, type Engine, type SpawnPlan, type SpawnedChild } from '../engine.js';

/**
 * The portable engine: child_process.spawn from the worker thread. libuv
 * forks, so its cost grows with the host's memory, and it cannot close fds
 * the host holds without close-on-exec; it is the fallback, not the default.
 */

// Node copies NODE_V8_COVERAGE into every child's env, even an explicit one;
// that would break "only what was passed reaches the child" under coverage.
delete process.env.NODE_V8_COVERAGE;

let socketSerial = 0;

/**
 * A connected stream socket pair, so that the child's fd 1 and fd 2 can share
 * one kernel object and the parent reads both in write order (child_process
 * cannot hand one pipe to two stdio slots).
 */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(`\0spawnpool-${process.pid}-${++socketSerial}`);
  await once(server, 'listening');
  try {
    const client = connect(server.address() as string);
    const [[accepted]] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
    return [client, accepted as Socket];
  } finally {
    server.close();
  }
}

function envObject(env: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = Object.create(null) as NodeJS.ProcessEnv;
  for (const entry of env) {
    const eq = entry.indexOf('=');
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

export const nodeEngine: Engine = {
  name: 'node',

  async spawn(plan: SpawnPlan): Promise<SpawnedChild> {
    let pair: [Socket, Socket] | undefined;
    const slot = (p: SpawnPlan['stdio'][number]) =>
      p === 'null' ? 'ignore' : p === 'pipe' ? 'pipe' : p === 'stdout' ? pair![0] : p.fd;
    if (plan.stdio[2] === 'stdout') pair = await socketPair();
    const stdio: StdioOptions = [slot(plan.stdio[0]), pair ? pair[0] : slot(plan.stdio[1]), slot(plan.stdio[2])];
    for (const fd of plan.keepFds) {
      while (stdio.length < fd) stdio.push('ignore');
      stdio[fd] = fd;
    }

    const [argv0 = plan.file, ...args] = plan.argv;
    const child = spawn(plan.file, args, { argv0, env: envObject(plan.env), cwd: plan.cwd, stdio });
    pair?.[0].destroy();
    if (child.pid === undefined) {
      pair?.[1].destroy();
      const [err] = (await once(child, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
      throw new SpawnFailure(err.code ?? 'ESPAWN', err.message);
    }
    const exited = new Promise<number>((resolve) => {
      child.once('exit', (code, signal) => {
        resolve(code !== null ? encodeExit(code) : encodeSignal(signalNumber(signal ?? 'SIGKILL') ?? 9));
      });
    });
    return {
      pid: child.pid,
      stdin: child.stdin,
      stdout: pair ? pair[1] : child.stdout,
      stderr: pair ? null : child.stderr,
      kill: (signal) => child.exitCode === null && child.signalCode === null && child.kill(signal),
      exited,
    };
  },
};
