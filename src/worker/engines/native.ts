import { Socket } from 'node:net';
import { loadNativeAddon, type NativeAddon } from '../../shared/native-addon.js';
import { SpawnFailure, killGroup, type Engine, type SpawnPlan, type SpawnedChild, type StdioPlan } from '../engine.js';

/**
 * The default engine: a small addon that clones with CLONE_VM|CLONE_VFORK
 * (no page-table copy, so the cost does not grow with the heap) and reaps
 * through a pidfd on this worker's own event loop.
 */

/** The addon's stdio codes. */
const NULL_DEVICE = -1;
const PIPE = -2;
const AS_STDOUT = -3;

function stdioCode(plan: StdioPlan): number {
  return plan === 'null' ? NULL_DEVICE : plan === 'pipe' ? PIPE : plan === 'stdout' ? AS_STDOUT : plan.fd;
}

/** A parent pipe end as a stream. The socket (a libuv pipe handle) owns the fd and closes it. */
function stream(fd: number, direction: 'read' | 'write'): Socket | null {
  if (fd < 0) return null;
  return new Socket({ fd, readable: direction === 'read', writable: direction === 'write' });
}

export const nativeEngine: Engine = {
  name: 'native',

  async spawn(plan: SpawnPlan): Promise<SpawnedChild> {
    const loadedNow = loadNativeAddon();
    if (!('addon' in loadedNow)) throw new SpawnFailure('ENOTSUP', loadedNow.reason);
    const { addon } = loadedNow;

    const asFailure = (err: unknown): unknown => {
      const { code, syscall, message } = err as NodeJS.ErrnoException;
      // The addon's own failures carry the errno name and the failing step.
      return code !== undefined && syscall !== undefined ? new SpawnFailure(code, message) : err;
    };

    let child: ReturnType<NativeAddon['spawn']>;
    try {
      child = addon.spawn(
        plan.file, plan.argv, plan.env, plan.cwd ?? null,
        [stdioCode(plan.stdio[0]), stdioCode(plan.stdio[1]), stdioCode(plan.stdio[2])],
        plan.keepFds, {
          ...(plan.parentDeathSignal === undefined ? {} : { pdeathsig: plan.parentDeathSignal }),
          ...(plan.session === 'session' ? { setsid: true } : plan.session === 'group' ? { setpgid: true } : {}),
        },
      );
    } catch (err) {
      throw asFailure(err);
    }
    const fds = [child.stdin, child.stdout, child.stderr];

    let reaped = false;
    let settle!: (rawStatus: number) => void;
    const exited = new Promise<number>((resolve) => (settle = resolve));
    try {
      // Watch first: from here on the child is reaped whatever else fails.
      addon.watch(child.pidfd, (rawStatus) => {
        reaped = true;
        settle(rawStatus);
      });
    } catch (err) {
      // The addon has killed and reaped the child; the pipes are still ours.
      for (const fd of fds) if (fd >= 0) addon.closeFd(fd);
      throw asFailure(err);
    }
    // The group's id is the child's pid, which cannot be reused before we reap it.
    const kill = (signal: number): boolean => !reaped && (plan.session === 'inherit' ? addon.kill(child.pidfd, signal) : killGroup(child.pid, signal));

    const streams: (Socket | null)[] = [];
    try {
      // One at a time: on a throw, `streams` holds exactly the sockets that own their fd.
      streams.push(stream(child.stdin, 'write'));
      streams.push(stream(child.stdout, 'read'));
      streams.push(stream(child.stderr, 'read'));
    } catch (err) {
      for (const s of streams) s?.destroy();
      for (const fd of fds.slice(streams.length)) if (fd >= 0) addon.closeFd(fd);
      kill(9);
      throw new SpawnFailure('ESPAWN', `cannot wrap the child's pipes: ${(err as Error).message}`);
    }
    const [stdin = null, stdout = null, stderr = null] = streams;
    return { pid: child.pid, stdin, stdout, stderr, kill, exited };
  },
};
