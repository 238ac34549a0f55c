import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { resolveBinary } from '../shared/resolve.js';
import { STDERR_TAIL_BYTES, type CommandSpec } from '../shared/spec.js';
import { unstarted, type RunOutcome, type RunTask, type WireFailure } from '../shared/protocol.js';
import { SpawnFailure, type Engine, type FastChild, type FastIo, type SpawnPlan, type SpawnedChild } from './engine.js';
import { Capture, Tail } from './capture.js';
import { closeHostFd } from './close-fd.js';
import { ControlChannel } from './control.js';
import { Ending } from './ending.js';
import { stdioPlan } from './stdio-plan.js';
import { OutputForwarder, StdinSink } from './port-streams.js';
import { FRAME, type Frame } from '../shared/stream-frames.js';
import type { Writable } from 'node:stream';

/** A run as the worker carries it out: its environment resolved (never SAME_ENV). */
export type WorkerTask = Omit<RunTask, 'env'> & { readonly env: readonly string[] | Uint8Array };

const now = () => performance.timeOrigin + performance.now();

/** Children never outlive the host: SIGKILL when the spawning worker thread (and so the host) is gone. */
const CHILD_DEATH_SIGNAL = 9;

/** Every run of this worker that has a child, with its lane id, so a pool destroy can end them all. */
const live = new Map<Ending, number>();
let destroyed = false;

/** The pool is being destroyed: SIGKILL every child; runs settle once reaped. */
export function endAll(): void {
  destroyed = true;
  for (const ending of live.keys()) ending.request('EPOOLCLOSED', 'killed: the pool was destroyed', 9);
}

/** The lane ids of the runs that have a child now. */
export function runsWithChild(): number[] {
  return [...live.values()];
}

/**
 * Writes it all, then closes. An error (EPIPE) means the child closed its
 * end early, which is its right; done either way.
 */
function feed(stream: Writable, data: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    stream.on('error', () => resolve());
    stream.on('finish', resolve);
    stream.on('close', resolve);
    stream.end(data);
  });
}

/**
 * The worker thread is exiting with children still running: it died (an
 * uncaught error, an out-of-memory). Nothing here will run again, so kill
 * them all now; the native addon reaps them as the thread's environment is
 * torn down, and the pool rejects their runs EWORKER.
 */
export function killAllNow(): void {
  for (const ending of live.keys()) ending.killNow();
}

function closeParentFds(spec: CommandSpec): void {
  for (const { fd, closeParent } of spec.passFds) if (closeParent) closeHostFd(fd);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

interface Timing {
  readonly startedAt: number;
  readonly queueWaitMs: number;
}

function notStarted(timing: Timing, failure: WireFailure): RunOutcome {
  return unstarted(failure, now() - timing.startedAt, timing.queueWaitMs);
}

/** Nothing about it needs a JS stream or the exec helper: the addon can carry it out alone. */
function fitsFastPath(spec: CommandSpec, engine: Engine): boolean {
  return engine.spawnFast !== undefined && spec.stdin.kind !== 'pipe' && spec.stdout.kind !== 'pipe' &&
    spec.stderr.kind !== 'pipe' && !spec.attrs.daemonize && !spec.attrs.handshake;
}

function fastIo(spec: CommandSpec): FastIo {
  return {
    input: spec.stdin.kind === 'buffer' ? spec.stdin.data : undefined,
    sendData: spec.sendBuffers.map((b) => b.data),
    captureOut: spec.stdout.kind === 'capture' || spec.stdout.kind === 'combined',
    captureErr: spec.stderr.kind === 'capture',
    tailErr: spec.stderr.kind === 'null',
    maxBuffer: spec.maxBuffer,
  };
}

/** Spawn, or say why not, with the code run() will reject with. */
async function start<T>(task: WorkerTask, control: ControlChannel, launch: (plan: SpawnPlan) => Promise<T>): Promise<T | WireFailure> {
  const { spec } = task;
  const file = resolveBinary(spec.binary, task.searchPath, task.parentCwd);
  if (typeof file !== 'string') return file;
  if (spec.cwd !== undefined && !isDirectory(spec.cwd)) {
    return { code: 'ENOCWD', message: `working directory ${spec.cwd} does not exist` };
  }
  if (control.pendingAbort) return { code: 'EABORTED', message: 'aborted before it was spawned' };
  if (destroyed) return { code: 'EPOOLCLOSED', message: 'the pool was destroyed' };
  try {
    return await launch({
      file,
      argv: [spec.binary, ...spec.args],
      env: task.env,
      cwd: spec.cwd,
      stdio: stdioPlan(spec),
      keepFds: spec.passFds.map((p) => p.fd),
      sendFds: spec.sendBuffers.map((b) => b.fd),
      parentDeathSignal: spec.attrs.parentDeathSignal ?? CHILD_DEATH_SIGNAL,
      session: spec.session,
      attrs: spec.attrs,
    });
  } catch (err) {
    // Whatever an engine throws is this run's failure, never the worker's.
    const code = err instanceof SpawnFailure ? err.code : ((err as NodeJS.ErrnoException).code ?? 'ESPAWN');
    // The directory may have gone between the check and the exec.
    if (code === 'ENOENT' && spec.cwd !== undefined && !isDirectory(spec.cwd)) {
      return { code: 'ENOCWD', message: `working directory ${spec.cwd} does not exist` };
    }
    return { code, message: `cannot execute ${file}: ${(err as Error).message}` };
  }
}

/** The worker's ends of inputPipe / outputPipe / errorPipe, joined to the run's port. */
function bridgePipes(spec: CommandSpec, child: SpawnedChild, control: ControlChannel): OutputForwarder[] {
  const send = (frame: Frame) => control.send(frame);
  const outputs = new Map<1 | 2, OutputForwarder>();
  if (spec.stdout.kind === 'pipe' && child.stdout) outputs.set(1, new OutputForwarder(child.stdout, send, 1));
  if (spec.stderr.kind === 'pipe' && child.stderr) outputs.set(2, new OutputForwarder(child.stderr, send, 2));
  const stdin = spec.stdin.kind === 'pipe' && child.stdin ? new StdinSink(child.stdin, send) : undefined;
  if (outputs.size > 0 || stdin) {
    control.onFrames((frame) => {
      switch (frame[FRAME]) {
        case 'credit': outputs.get(frame.fd)?.credit(frame.bytes); break;
        case 'stdin': stdin?.write(frame.chunk); break;
        case 'stdin-end': stdin?.end(); break;
      }
    });
  }
  return [...outputs.values()];
}

/**
 * One run in a worker: resolve, spawn, feed, capture, end, reap. Every path
 * out of here has reaped the child and released the control port.
 */
export async function runChild(task: WorkerTask, engine: Engine): Promise<RunOutcome> {
  const startedAt = now();
  const timing: Timing = { startedAt, queueWaitMs: Math.max(0, startedAt - task.postedAt) };
  const control = new ControlChannel(task.port);
  try {
    if (fitsFastPath(task.spec, engine)) {
      const io = fastIo(task.spec);
      const started = await start(task, control, (plan) => engine.spawnFast!(plan, io)).finally(() => closeParentFds(task.spec));
      if (!('pid' in started)) return notStarted(timing, started);
      return await superviseFast(task, started, control, timing);
    }
    const started = await start(task, control, (plan) => engine.spawn(plan)).finally(() => closeParentFds(task.spec));
    if (!('pid' in started)) return notStarted(timing, started);
    return await supervise(task, started, control, timing);
  } finally {
    control.finish();
  }
}

/** What every run does once it has a child: the one way to end it, timeout and abort wired to it. */
function endingFor(task: WorkerTask, child: Pick<SpawnedChild, 'kill'>, onTimeout?: () => void) {
  const ending = new Ending(child, task.killSignal, task.killGraceMs);
  live.set(ending, task.id);
  if (destroyed) endAll();
  const timer = task.timeoutMs === undefined ? undefined : setTimeout(() => {
    ending.request('ETIMEDOUT', `timed out after ${task.timeoutMs} ms`);
    onTimeout?.();
  }, task.timeoutMs);
  const abort = (signal?: number) => ending.request('EABORTED', 'aborted', signal ?? task.killSignal);
  return { ending, timer, abort };
}

/** The fast path: the addon feeds, captures and reaps; this side keeps the timers and the reasons. */
async function superviseFast(task: WorkerTask, child: FastChild, control: ControlChannel, timing: Timing): Promise<RunOutcome> {
  const { spec } = task;
  const spawnMs = now() - timing.startedAt;
  const { ending, timer, abort } = endingFor(task, child);
  control.started(child.pid, abort);
  if (control.pendingAbort) abort(control.pendingAbort.signal);
  const record = await child.done;
  clearTimeout(timer);
  ending.settle();
  live.delete(ending);
  const overflow = record.overflowed ? { code: 'EMAXBUFFER', message: `output went past maxBuffer (${spec.maxBuffer} bytes)` } : undefined;
  const combined = spec.stdout.kind === 'combined';
  return {
    pid: child.pid,
    rawStatus: record.rawStatus,
    failure: ending.reason ?? overflow,
    stdout: combined ? undefined : record.stdout,
    output: combined ? record.stdout : undefined,
    stderr: record.stderr,
    stderrTail: record.stderrTail,
    durationMs: now() - timing.startedAt,
    queueWaitMs: timing.queueWaitMs,
    spawnMs,
  };
}

async function supervise(task: WorkerTask, child: SpawnedChild, control: ControlChannel, timing: Timing): Promise<RunOutcome> {
  const { spec } = task;
  const spawnMs = now() - timing.startedAt;
  const { ending, timer, abort } = endingFor(task, child, () => {
    // Also what a daemon has not read by then: its run ends now.
    for (const pipe of child.sendPipes) pipe.destroy();
  });
  const overflow = () => ending.request('EMAXBUFFER', `output went past maxBuffer (${spec.maxBuffer} bytes)`, 9);

  if (spec.stdin.kind === 'buffer' && child.stdin) void feed(child.stdin, spec.stdin.data);
  const sent = Promise.all(child.sendPipes.map((pipe, i) => feed(pipe, spec.sendBuffers[i]!.data)));
  const stdout = child.stdout && spec.stdout.kind !== 'pipe' ? new Capture(child.stdout, spec.maxBuffer, overflow) : undefined;
  const stderr =
    child.stderr && spec.stderr.kind === 'capture' ? new Capture(child.stderr, spec.maxBuffer, overflow) : undefined;
  const tail = child.stderr && spec.stderr.kind === 'null' ? new Tail(child.stderr, STDERR_TAIL_BYTES) : undefined;
  const pipes = bridgePipes(spec, child, control);

  control.started(child.pid, abort, child.helper);
  if (control.pendingAbort) abort(control.pendingAbort.signal);

  const rawStatus = await child.exited;
  // A daemon's run also covers its send buffers (below); any other ends here.
  if (!spec.attrs.daemonize) clearTimeout(timer);
  ending.settle();
  live.delete(ending);
  // The helper's last word: a daemon's status pipe closes when the daemon execs (or fails).
  if (ending.reason) child.helper?.abandon();
  const helper = child.helper && !ending.reason ? await child.helper.done : undefined;
  // A daemon still holds its send buffers' pipes: its run ends once it has
  // read them, or at timeoutMs (the daemon keeps running either way).
  if (spec.attrs.daemonize && !ending.reason && !helper?.failure) await sent;
  clearTimeout(timer);
  // Input nobody ended: the child is gone, close our end.
  child.stdin?.destroy();
  for (const pipe of child.sendPipes) pipe.destroy();
  const readers = [stdout, stderr, tail, ...pipes].filter((r) => r !== undefined);
  // A killed child's pipes may be held open by its own children: don't wait on them.
  if (ending.reason) for (const r of readers) r.abandon();
  await Promise.all(readers.map((r) => r.done));

  const combined = spec.stdout.kind === 'combined';
  const captured = stdout?.bytes();
  return {
    pid: child.pid,
    rawStatus,
    failure: ending.reason ?? helper?.failure,
    daemonPid: helper?.daemonPid,
    stdout: combined ? undefined : captured,
    output: combined ? captured : undefined,
    stderr: stderr?.bytes(),
    stderrTail: tail?.bytes(),
    durationMs: now() - timing.startedAt,
    queueWaitMs: timing.queueWaitMs,
    spawnMs,
  };
}
