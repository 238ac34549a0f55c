import { spawn, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { createServer, connect, type Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { signalNumber, encodeExit, encodeSignal } from '../../shared/status.js';
import { SpawnFailure, killGroup, type Engine, type SpawnPlan, type SpawnedChild } from '../engine.js';
import { requestedAttributes } from '../../shared/spec.js';

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
  // Abstract names are per network namespace: pid and thread make it ours.
  server.listen(`\0spawnpool-${process.pid}-${threadId}-${++socketSerial}`);
  await once(server, 'listening');
  try {
    const client = connect(server.address() as string);
    const [[accepted]] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
    return [client, accepted as Socket];
  } finally {
    server.close();
  }
}

function envObject(env: readonly string[] | Uint8Array): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = Object.create(null) as NodeJS.ProcessEnv;
  const entries = env instanceof Uint8Array
    ? Buffer.from(env.buffer, env.byteOffset, env.byteLength).toString('utf8').split('\0').filter((e) => e !== '')
    : env;
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** The first bytes of a file, or undefined when it cannot be read. */
function head(file: string, bytes: number): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** e_machine of an ELF header (little- or big-endian per EI_DATA). */
const elfMachine = (h: Buffer) => (h[5] === 2 ? h.readUInt16BE(18) : h.readUInt16LE(18));

let hostMachine: number | undefined;

/** Whether the kernel's ELF loader would take this header: what execve checks first. */
function loadableElf(h: Buffer): boolean {
  const ET_EXEC = 2, ET_DYN = 3;
  if (h.length < 52 || (h[4] !== 1 && h[4] !== 2) || (h[5] !== 1 && h[5] !== 2)) return false;
  const type = h[5] === 2 ? h.readUInt16BE(16) : h.readUInt16LE(16);
  if (type !== ET_EXEC && type !== ET_DYN) return false;
  hostMachine ??= elfMachine(head(process.execPath, 64)!);
  return elfMachine(h) === hostMachine;
}

/**
 * execvp(3), which libuv uses, runs a file execve(2) refuses with ENOEXEC
 * through /bin/sh instead; the native engine reports ENOEXEC. Find those
 * files first: neither "#!" nor an ELF header this machine can load, while
 * no binfmt_misc handler is registered that might run them.
 */
function unknownFormat(file: string): boolean {
  try {
    if (readdirSync('/proc/sys/fs/binfmt_misc').some((e) => e !== 'register' && e !== 'status')) return false;
  } catch {
    // Not mounted: no handlers.
  }
  const h = head(file, 64);
  // Unreadable (execute-only, a directory...): execve decides.
  if (h === undefined) return false;
  if (h.length >= 2 && h[0] === 0x23 && h[1] === 0x21) return false;
  return !(h.length >= 4 && h.readUInt32BE(0) === 0x7f454c46 && loadableElf(h));
}

export const nodeEngine: Engine = {
  name: 'node',

  async spawn(plan: SpawnPlan): Promise<SpawnedChild> {
    const unsupported = requestedAttributes(plan.attrs);
    if (unsupported.length > 0) {
      throw new SpawnFailure('ENOTSUP', `the child_process engine cannot provide ${unsupported.join(', ')}; use the native engine`);
    }
    if (unknownFormat(plan.file)) throw new SpawnFailure('ENOEXEC', `spawn ${plan.file} ENOEXEC: exec format error`);
    let pair: [Socket, Socket] | undefined;
    const slot = (p: SpawnPlan['stdio'][number]) =>
      p === 'null' ? 'ignore' : p === 'pipe' ? 'pipe' : p === 'stdout' ? pair![0] : p.fd;
    if (plan.stdio[2] === 'stdout') pair = await socketPair();
    const stdio: Exclude<StdioOptions, string> = [slot(plan.stdio[0]), pair ? pair[0] : slot(plan.stdio[1]), slot(plan.stdio[2])];
    const place = (fd: number, what: 'pipe' | number) => {
      while (stdio.length < fd) stdio.push('ignore');
      stdio[fd] = what;
    };
    for (const fd of plan.keepFds) place(fd, fd);
    // A socket pair, as every child_process pipe: the child read()s it, but cannot open /dev/fd/N.
    for (const fd of plan.sendFds) place(fd, 'pipe');

    const [argv0 = plan.file, ...args] = plan.argv;
    // child_process can only setsid (detached), which makes a group too.
    const child = spawn(plan.file, args, { argv0, env: envObject(plan.env), cwd: plan.cwd, stdio, detached: plan.session !== 'inherit' });
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
      sendPipes: plan.sendFds.map((fd) => child.stdio[fd] as Writable),
      // libuv reaps and sets the exit code in one step: before that, the pid (and group) are still ours.
      kill: (signal) => child.exitCode === null && child.signalCode === null &&
        (plan.session === 'inherit' ? child.kill(signal) : killGroup(child.pid!, signal)),
      exited,
    };
  },
};
