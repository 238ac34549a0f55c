// A private redis-server for the distributed tests: a Unix socket in a
// fresh directory (mode 0700), no TCP port, no persistence; killed by pid.
// Under CI=true a missing redis-server fails the tests; elsewhere they skip
// with a message, so that a green CI cannot hide a missing install.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { accessSync, constants } from 'node:fs';
import { tmpBase } from './_support.js';

const SERVER_PATHS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server'];

export const REDIS_SERVER = SERVER_PATHS.find((p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/** `test` for tests that need the server: skipped with the reason where there is none (and not CI). */
export function redisTest(test, name, fn) {
  if (REDIS_SERVER !== undefined) return test(name, fn);
  if (process.env.CI === 'true') return test(name, () => { throw new Error('redis-server is not installed (CI=true)'); });
  console.log(`  skipped (no redis-server; apt-get install redis-server): ${name}`);
  return test.skip(name, fn);
}

/** Starts a server; resolves once it answers PING on its socket (as `auth`'s user, when the server wants one). */
export async function startRedis(extraArgs = [], auth = {}) {
  const dir = mkdtempSync(join(tmpBase, 'redis-'));
  const socket = join(dir, 'redis.sock');
  const child = spawn(REDIS_SERVER, [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir,
    ...extraArgs,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const { Redis } = await import('ioredis');
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited ${child.exitCode}: ${log}`);
    const probe = new Redis({ path: socket, ...auth, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') {
        probe.disconnect();
        break;
      }
    } catch {
      probe.disconnect();
    }
    if (i > 500) throw new Error(`redis-server did not answer on ${socket}: ${log}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    socket,
    url: `unix://${socket}`,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Registers a server for the whole test file (before, after); `.server` once started. */
export function serveRedis(test) {
  const held = { server: undefined };
  test.before(async () => {
    if (REDIS_SERVER !== undefined) held.server = await startRedis();
  });
  test.after(async () => {
    await held.server?.stop();
  });
  return held;
}
