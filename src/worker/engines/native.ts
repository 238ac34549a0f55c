import { Socket } from 'node:net';
import { getSystemErrorMap } from 'node:util';
import {
  RUNNER_RECORD_FIELDS, execHelper, loadNativeAddon, type AttributeEntry, type NativeAddon, type NativeRunner, type RunnerRecords,
  type SpawnFlags,
} from '../../shared/native-addon.js';
import type { WireFailure } from '../../shared/protocol.js';
import { DEFAULT_MAX_BUFFER, NO_ATTRIBUTES } from '../../shared/spec.js';
import {
  CHILD_DEATH_SIGNAL, NO_FDS, SpawnFailure, killGroup, type Engine, type FastChild, type FastIo, type FastRecord, type HelperChannel, type PlainChild,
  type SpawnPlan, type SpawnedChild, type StdioPlan,
} from '../engine.js';

/**
 * The default engine: a small addon that clones with CLONE_VM|CLONE_VFORK
 * (no page-table copy, so the cost does not grow with the heap) and reaps
 * through a pidfd on this worker's own event loop. The vfork child applies
 * the process attributes itself; for the two it must not do on this
 * suspended thread (daemonize, handshake) it starts the exec helper, which
 * applies them all and execs the target.
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

let table: readonly AttributeEntry[] | undefined;
/** attrs.h's list, read from the addon once per thread. */
const attributeTable = (addon: NativeAddon): readonly AttributeEntry[] => (table ??= addon.attributeTable());

/** What attrs.h applies, under its names; the groups are looked up here, before clone. */
function attributeFlags(addon: NativeAddon, plan: SpawnPlan): SpawnFlags {
  const a = plan.attrs;
  // Most runs set no attribute: their flags are the death signal alone.
  if (a === NO_ATTRIBUTES) return { parentDeathSignal: plan.parentDeathSignal };
  // libvirt's rule: a non-root uid loses every cap but the allowed, bounding set included.
  const restrict = a.clearCaps || a.allowedCaps.length > 0 || (a.uid !== undefined && a.uid !== 0);
  const values: Record<string, unknown> = {
    ...a,
    clearCaps: restrict,
    allowedCaps: restrict ? a.allowedCaps : undefined,
    groups: a.uid !== undefined || a.gid !== undefined ? addon.groupList(a.uid ?? -1, a.gid ?? -1) : undefined,
    parentDeathSignal: plan.parentDeathSignal,
  };
  const flags: Record<string, unknown> = {};
  for (const { name } of attributeTable(addon)) {
    if (values[name] !== undefined && values[name] !== false) flags[name] = values[name];
  }
  return flags;
}

/** The helper's command line (its options are documented in exec-helper.c): the attributes as `--name [value]`. */
function helperArgv(addon: NativeAddon, path: string, plan: SpawnPlan, flags: SpawnFlags, statusFd: number, goFd: number | undefined): string[] {
  // The helper closes every fd it is not told to keep: send buffers included.
  const keep = [...plan.keepFds, ...plan.sendFds];
  const args = [path, '--status-fd', String(statusFd)];
  const given = flags as Record<string, unknown>;
  for (const { name, kind } of attributeTable(addon)) {
    const value = given[name];
    // A daemon outlives its spawner.
    if (value === undefined || (name === 'parentDeathSignal' && plan.attrs.daemonize)) continue;
    args.push(`--${name}`);
    if (kind !== 'bool') args.push(Array.isArray(value) ? value.join(',') : String(value));
  }
  if (plan.attrs.daemonize) {
    args.push('--daemonize');
    if (plan.attrs.pidFile !== undefined) args.push('--pidfile', plan.attrs.pidFile);
  } else if (plan.cwd !== undefined) {
    args.push('--cwd', plan.cwd);
  }
  if (goFd !== undefined) args.push('--handshake-fd', String(goFd));
  if (keep.length > 0) args.push('--keep', keep.join(','));
  args.push('--', plan.file, ...plan.argv);
  return args;
}

const errnoNames = getSystemErrorMap();

/** A failure line of the helper, `E <errno> <step>`, as the vfork child's errors read. */
function helperFailure(errno: number, step: string): WireFailure {
  const [code = 'ESPAWN', text = 'unknown error'] = errnoNames.get(-errno) ?? [];
  return { code, message: `${step}: ${code} (${text.charAt(0).toUpperCase()}${text.slice(1)})` };
}

/**
 * The worker's side of the helper's status pipe (`R`: ready for the
 * handshake, `D <pid>`: the daemon, `E <errno> <step>`: failed; EOF: the
 * target exec'd, or the helper is gone) and of its handshake pipe.
 */
function watchHelper(statusFd: number, goFd: number | undefined): HelperChannel {
  const status = new Socket({ fd: statusFd, readable: true, writable: false });
  let go = goFd === undefined ? undefined : new Socket({ fd: goFd, readable: false, writable: true });
  go?.on('error', () => undefined);
  let failure: WireFailure | undefined;
  let daemonPid: number | undefined;
  let text = '';
  let readyState: 'waiting' | 'ready' | WireFailure = 'waiting';
  let settleReady!: () => void;
  const ready = new Promise<WireFailure | undefined>((resolve) => {
    settleReady = () => resolve(readyState === 'ready' || readyState === 'waiting' ? undefined : readyState);
  });
  const fail = (f: WireFailure) => {
    failure ??= f;
    if (readyState === 'waiting') {
      readyState = f;
      settleReady();
    }
  };
  const done = new Promise<{ failure: WireFailure | undefined; daemonPid: number | undefined }>((resolve) => {
    status.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      let nl: number;
      while ((nl = text.indexOf('\n')) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        const [kind, a = '', ...rest] = line.split(' ');
        if (kind === 'R' && readyState === 'waiting') {
          readyState = 'ready';
          settleReady();
        } else if (kind === 'D') {
          daemonPid = Number(a);
        } else if (kind === 'E') {
          fail(helperFailure(Number(a), rest.join(' ')));
        } else {
          fail({ code: 'EPROTO', message: `the exec helper sent ${JSON.stringify(line)}` });
        }
      }
    });
    const end = () => {
      fail({ code: 'ECONNRESET', message: 'the child ended before it was ready for the handshake' });
      go?.destroy();
      resolve({ failure: failure?.code === 'ECONNRESET' ? undefined : failure, daemonPid });
    };
    status.on('error', end);
    status.on('close', end);
  });
  return {
    ready,
    notify() {
      go?.end('1');
      go = undefined;
    },
    done,
    abandon() {
      status.destroy();
      go?.destroy();
    },
  };
}

/**
 * Pipes beyond stdio (send buffers, the exec helper's status and handshake
 * pipes), each moved to a chosen number in the child. Until handed out,
 * their fds are closed here on every path.
 */
class ExtraPipes {
  readonly moves: number[] = [];
  /** By number in the child: [child's end, ours]; -1 once closed or handed out. */
  readonly #ends = new Map<number, [number, number]>();

  constructor(private readonly addon: NativeAddon) {}

  /** `direction`: which way the worker uses its end. Returns `at`. */
  open(direction: 'read' | 'write', at: number): number {
    const [r, w] = this.addon.pipe();
    // The child reads a send buffer and the handshake's go; it writes its status.
    const ends: [number, number] = direction === 'write' ? [r, w] : [w, r];
    this.#ends.set(at, ends);
    this.moves.push(ends[0], at);
    return at;
  }

  closeChildEnds(): void {
    for (const ends of this.#ends.values()) this.#close(ends, 0);
  }

  /** Our end's fd, still owned here. */
  peek(at: number): number {
    return this.#ends.get(at)![1];
  }

  /** Our end's fd; the caller owns it from now on. */
  ours(at: number): number {
    const ends = this.#ends.get(at)!;
    const fd = ends[1];
    ends[1] = -1;
    return fd;
  }

  /** Our end as a writable stream that owns the fd. */
  take(at: number): Socket {
    const socket = stream(this.#ends.get(at)![1], 'write')!;
    this.ours(at);
    return socket;
  }

  closeAll(): void {
    for (const ends of this.#ends.values()) {
      this.#close(ends, 0);
      this.#close(ends, 1);
    }
  }

  #close(ends: [number, number], which: 0 | 1): void {
    if (ends[which] >= 0) this.addon.closeFd(ends[which]);
    ends[which] = -1;
  }
}

function loadedAddon(): NativeAddon {
  const loaded = loadNativeAddon();
  if (!('addon' in loaded)) throw new SpawnFailure(loaded.code ?? 'ENOTSUP', loaded.reason);
  return loaded.addon;
}

/** The addon's own failures carry the errno name and the failing step. */
function asFailure(err: unknown): unknown {
  const { code, syscall, message } = err as NodeJS.ErrnoException;
  return code !== undefined && syscall !== undefined ? new SpawnFailure(code, message) : err;
}

/** spawn()'s flags: the attributes, the moved fds, the session. */
function childFlags(flags: SpawnFlags, moves: readonly number[], session: SpawnPlan['session']): SpawnFlags {
  if (moves.length === 0 && session === 'inherit') return flags;
  return {
    ...flags,
    ...(moves.length > 0 ? { moveFds: moves } : {}),
    ...(session === 'session' ? { setsid: true } : session === 'group' ? { setpgid: true } : {}),
  };
}

/** This thread's runner (runner.c), opened on first use; its records reach the run that waits for them. */
let runner: NativeRunner | undefined;
const runnerWaiting = new Map<number, (record: FastRecord) => void>();
const plainWaiting = new Map<number, PlainChild>();
let runnerNextId = 1;

function openRunner(addon: NativeAddon): NativeRunner {
  runner ??= addon.runnerOpen((records: RunnerRecords) => {
    for (let i = 0; i < records.length; i += RUNNER_RECORD_FIELDS) {
      const id = records[i] as number;
      const plain = plainWaiting.get(id);
      if (plain !== undefined) {
        plainWaiting.delete(id);
        plain.exited(records[i + 1] as number, records[i + 5] as Uint8Array | undefined);
        continue;
      }
      const done = runnerWaiting.get(id);
      runnerWaiting.delete(id);
      done?.({
        rawStatus: records[i + 1] as number,
        overflowed: records[i + 2] as boolean,
        stdout: records[i + 3] as Uint8Array | undefined,
        stderr: records[i + 4] as Uint8Array | undefined,
        stderrTail: records[i + 5] as Uint8Array | undefined,
      });
    }
  });
  return runner;
}

/** What spawnFast() would be given for a plain run: /dev/null in and out, a pipe for stderr's tail, SIGKILL at the thread's death. */
const PLAIN_STDIO: [number, number, number] = [NULL_DEVICE, NULL_DEVICE, PIPE];
const PLAIN_FLAGS: SpawnFlags = Object.freeze({ parentDeathSignal: CHILD_DEATH_SIGNAL });
const PLAIN_CAPTURE_OUT = 0;
const PLAIN_CAPTURE_ERR = 0;
const PLAIN_TAIL_ERR = 1;
const PLAIN_GROUP = 0;
const NO_DATA: readonly Uint8Array[] = Object.freeze([]);

export const nativeEngine: Engine = {
  name: 'native',

  async spawn(plan: SpawnPlan): Promise<SpawnedChild> {
    const addon = loadedAddon();

    const viaHelper = plan.attrs.daemonize || plan.attrs.handshake;
    let flags: SpawnFlags;
    try {
      flags = attributeFlags(addon, plan);
    } catch (err) {
      throw asFailure(err);
    }
    let file = plan.file;
    let argv = plan.argv;
    let cwd = plan.cwd ?? null;
    // A daemon's kills reach the intermediate only: the daemon is in its session, not ours to end.
    const session = plan.attrs.daemonize ? 'inherit' : plan.session;
    const helper = viaHelper ? execHelper() : undefined;
    if (helper && !('path' in helper)) {
      const features = [plan.attrs.daemonize && 'daemonize()', plan.attrs.handshake && 'requireHandshake()'].filter(Boolean);
      throw new SpawnFailure('ENOTSUP', `${features.join(', ')} need the exec helper: ${helper.reason}`);
    }
    // Pipes the child gets beyond stdio, each moved to its number there.
    const extra = new ExtraPipes(addon);
    let helperFds: { status: number; go: number | undefined } | undefined;
    try {
      for (const fd of plan.sendFds) extra.open('write', fd);
      if (helper && 'path' in helper) {
        // Above every number the caller chose, so they cannot collide, and
        // well above 2, so that what the helper opens (a pidfile) gets the
        // low numbers a plain spawn would give it.
        const top = Math.max(99, ...plan.keepFds, ...plan.sendFds);
        helperFds = { status: extra.open('read', top + 1), go: plan.attrs.handshake ? extra.open('write', top + 2) : undefined };
        argv = helperArgv(addon, helper.path, plan, flags, helperFds.status, helperFds.go);
        file = helper.path;
        cwd = null;
        // The helper applies them all, after its own steps; the death
        // signal also binds the helper itself.
        flags = plan.parentDeathSignal === undefined ? {} : { parentDeathSignal: plan.parentDeathSignal };
      }
    } catch (err) {
      extra.closeAll();
      throw asFailure(err);
    }

    let child: ReturnType<NativeAddon['spawn']>;
    try {
      child = addon.spawn(
        file, argv, plan.env, cwd,
        [stdioCode(plan.stdio[0]), stdioCode(plan.stdio[1]), stdioCode(plan.stdio[2])],
        plan.keepFds, childFlags(flags, extra.moves, session),
      );
    } catch (err) {
      extra.closeAll();
      throw asFailure(err);
    }
    extra.closeChildEnds();
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
      extra.closeAll();
      throw asFailure(err);
    }
    // The group's id is the child's pid, which cannot be reused before we reap it.
    const kill = (signal: number): boolean => !reaped && (session === 'inherit' ? addon.kill(child.pidfd, signal) : killGroup(child.pid, signal));

    const streams: (Socket | null)[] = [];
    let channel: HelperChannel | undefined;
    const sendPipes: Socket[] = [];
    try {
      // One at a time: on a throw, `streams` holds exactly the sockets that own their fd.
      streams.push(stream(child.stdin, 'write'));
      streams.push(stream(child.stdout, 'read'));
      streams.push(stream(child.stderr, 'read'));
      for (const fd of plan.sendFds) sendPipes.push(extra.take(fd));
      if (helperFds) channel = watchHelper(extra.ours(helperFds.status), helperFds.go === undefined ? undefined : extra.ours(helperFds.go));
    } catch (err) {
      for (const s of [...streams, ...sendPipes]) s?.destroy();
      for (const fd of fds.slice(streams.length)) if (fd >= 0) addon.closeFd(fd);
      extra.closeAll();
      kill(9);
      throw new SpawnFailure('ESPAWN', `cannot wrap the child's pipes: ${(err as Error).message}`);
    }
    const [stdin = null, stdout = null, stderr = null] = streams;
    return { pid: child.pid, stdin, stdout, stderr, sendPipes, kill, exited, helper: channel };
  },

  /**
   * The fast path (runner.c): no stream, no helper. The addon feeds the
   * input and send buffers, reads the captures and the stderr tail, reaps,
   * and reports; JS keeps the timers and the reasons.
   */
  spawnFast(plan: SpawnPlan, io: FastIo, done: (record: FastRecord) => void): FastChild {
    const addon = loadedAddon();
    let flags: SpawnFlags;
    try {
      flags = attributeFlags(addon, plan);
    } catch (err) {
      throw asFailure(err);
    }
    const r = openRunner(addon);
    // Send buffers only: most runs have none, and no pipe to open here.
    const extra = plan.sendFds.length > 0 ? new ExtraPipes(addon) : undefined;
    const id = runnerNextId++;
    let pid: number;
    try {
      const ours = extra ? plan.sendFds.map((fd) => extra.peek(extra.open('write', fd))) : NO_FDS;
      const group = plan.session === 'inherit' ? 0 : 1;
      pid = addon.runnerSpawn(
        r, plan.file, plan.argv, plan.env, plan.cwd ?? null,
        [stdioCode(plan.stdio[0]), stdioCode(plan.stdio[1]), stdioCode(plan.stdio[2])],
        plan.keepFds, childFlags(flags, extra?.moves ?? NO_FDS, plan.session),
        [id, io.input ?? null, ours, io.sendData, +io.captureOut, +io.captureErr, +io.tailErr, io.maxBuffer, group],
      );
      // The runner owns our ends now.
      for (const fd of plan.sendFds) extra!.ours(fd);
    } catch (err) {
      extra?.closeAll();
      throw asFailure(err);
    }
    extra?.closeChildEnds();
    runnerWaiting.set(id, done);
    return { pid, kill: (signal) => addon.runnerKill(r, id, signal) };
  },

  spawnPlain(file: string, argv: readonly string[], env: readonly string[] | Uint8Array, child: PlainChild): void {
    const addon = loadedAddon();
    const r = openRunner(addon);
    const id = runnerNextId++;
    try {
      child.pid = addon.runnerSpawn(
        r, file, argv, env, null, PLAIN_STDIO, NO_FDS, PLAIN_FLAGS,
        [id, null, NO_FDS, NO_DATA, PLAIN_CAPTURE_OUT, PLAIN_CAPTURE_ERR, PLAIN_TAIL_ERR, DEFAULT_MAX_BUFFER, PLAIN_GROUP],
      );
    } catch (err) {
      throw asFailure(err);
    }
    child.engineId = id;
    plainWaiting.set(id, child);
  },

  killPlain(child: PlainChild, signal: number): boolean {
    return runner !== undefined && loadedAddon().runnerKill(runner, child.engineId, signal);
  },
};
