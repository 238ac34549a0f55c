import { statSync } from 'node:fs';
import { sharedNow } from '../shared/clock.js';
import { resolveBinary } from '../shared/resolve.js';
import { STDERR_TAIL_BYTES, hasPipe, type CommandSpec } from '../shared/spec.js';
import { unstarted, type RunOutcome, type RunTask, type WireFailure } from '../shared/protocol.js';
import {
  CHILD_DEATH_SIGNAL, NO_FDS, SpawnFailure, type Engine, type FastChild, type FastIo, type FastRecord, type HelperChannel, type SpawnPlan, type SpawnedChild,
} from './engine.js';
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

/** Every run of this worker that has a child, with its lane id, so a pool destroy can end them all. */
const live = new Map<Ending, number>();
let destroyed = false;

/** The pool is being destroyed: SIGKILL every child; runs settle once reaped. */
export function endAll(): void {
  destroyed = true;
  for (const ending of live.keys()) ending.request('EPOOLCLOSED', 'killed: the pool was destroyed', 9);
}

/** Runs an abort on the lane can reach (run() with an AbortSignal), by lane id; added only for those. */
const abortable = new Map<number, (signal: number | undefined) => void>();

/** An abort from the lane; a run already over is no longer here, and the abort is moot. */
export function abortRun(id: number, signal: number | undefined): void {
  abortable.get(id)?.(signal);
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

function timingOf(task: WorkerTask): Timing {
  const startedAt = sharedNow();
  return { startedAt, queueWaitMs: Math.max(0, startedAt - task.postedAt) };
}

function notStarted(timing: Timing, failure: WireFailure): RunOutcome {
  return unstarted(failure, sharedNow() - timing.startedAt, timing.queueWaitMs);
}

/** Nothing about it needs a JS stream or the exec helper: the addon can carry it out alone. */
export function fitsFastPath(spec: CommandSpec, engine: Engine): boolean {
  return engine.spawnFast !== undefined && !hasPipe(spec) && !spec.attrs.daemonize && !spec.attrs.handshake;
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

const noCwd = (cwd: string): WireFailure => ({ code: 'ENOCWD', message: `working directory ${cwd} does not exist` });

/** The program's path, or why the run cannot start (checked before any clone). */
function precheck(task: WorkerTask, control: ControlChannel | undefined): string | WireFailure {
  const { spec } = task;
  const file = resolveBinary(spec.binary, task.searchPath, task.parentCwd);
  if (typeof file !== 'string') return file;
  if (spec.cwd !== undefined && !isDirectory(spec.cwd)) return noCwd(spec.cwd);
  if (control?.pendingAbort) return { code: 'EABORTED', message: 'aborted before it was spawned' };
  if (destroyed) return { code: 'EPOOLCLOSED', message: 'the pool was destroyed' };
  return file;
}

function planFor(task: WorkerTask, file: string): SpawnPlan {
  const { spec } = task;
  return {
    file,
    argv: [spec.binary, ...spec.args],
    env: task.env,
    cwd: spec.cwd,
    stdio: stdioPlan(spec),
    keepFds: spec.passFds.length === 0 ? NO_FDS : spec.passFds.map((p) => p.fd),
    sendFds: spec.sendBuffers.length === 0 ? NO_FDS : spec.sendBuffers.map((b) => b.fd),
    parentDeathSignal: spec.attrs.parentDeathSignal ?? CHILD_DEATH_SIGNAL,
    session: spec.session,
    attrs: spec.attrs,
  };
}

/** Whatever an engine throws is this run's failure, never the worker's. */
export function launchFailure(err: unknown, cwd: string | undefined, file: string): WireFailure {
  const code = err instanceof SpawnFailure ? err.code : ((err as NodeJS.ErrnoException).code ?? 'ESPAWN');
  // The directory may have gone between the check and the exec.
  if (code === 'ENOENT' && cwd !== undefined && !isDirectory(cwd)) return noCwd(cwd);
  return { code, message: `cannot execute ${file}: ${(err as Error).message}` };
}

/** Spawn, or say why not, with the code run() will reject with. */
async function start<T>(task: WorkerTask, control: ControlChannel, launch: (plan: SpawnPlan) => Promise<T>): Promise<T | WireFailure> {
  const file = precheck(task, control);
  if (typeof file !== 'string') return file;
  try {
    return await launch(planFor(task, file));
  } catch (err) {
    return launchFailure(err, task.spec.cwd, file);
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

/** Where a run's outcome goes, and its pid when it asked for it: the lane. */
export interface Completions {
  complete(id: number, outcome: RunOutcome): void;
  spawned(id: number, pid: number): void;
}

/**
 * A fast-path run without a control port (run() with no AbortSignal, the
 * common case): no promise and no channel, one callback from the addon.
 */
export function runFastDirect(task: WorkerTask, engine: Engine, lane: Completions): void {
  const timing = timingOf(task);
  const { spec } = task;
  let child: FastChild;
  try {
    const file = precheck(task, undefined);
    if (typeof file !== 'string') return lane.complete(task.id, notStarted(timing, file));
    try {
      child = engine.spawnFast!(planFor(task, file), fastIo(spec), (record) => {
        clearTimeout(timer);
        ending.settle();
        live.delete(ending);
        abortable.delete(task.id);
        lane.complete(task.id, fastOutcome(task, child.pid, record, ending, timing, spawnMs));
      });
    } catch (err) {
      return lane.complete(task.id, notStarted(timing, launchFailure(err, spec.cwd, file)));
    }
  } finally {
    closeParentFds(spec);
  }
  // The addon reports from this thread's loop, never from inside spawnFast().
  const spawnMs = sharedNow() - timing.startedAt;
  const { ending, timer } = endingFor(task, child);
  if (task.abortable) abortable.set(task.id, (signal) => ending.request('EABORTED', 'aborted', signal ?? task.killSignal));
  if (task.notifySpawn) lane.spawned(task.id, child.pid);
}

/** A run that can be raced by a callback: spawnFast's record as a promise. */
function spawnFastAwaitable(engine: Engine, plan: SpawnPlan, io: FastIo): FastChild & { readonly done: Promise<FastRecord> } {
  let settle!: (record: FastRecord) => void;
  const done = new Promise<FastRecord>((resolve) => (settle = resolve));
  const child = engine.spawnFast!(plan, io, (record) => settle(record));
  return { pid: child.pid, kill: child.kill, done };
}

/**
 * One run in a worker: resolve, spawn, feed, capture, end, reap. Every path
 * out of here has reaped the child and released the control port.
 */
export async function runChild(task: WorkerTask, engine: Engine, lane: Completions): Promise<RunOutcome> {
  const timing = timingOf(task);
  const control = new ControlChannel(task.port, task.notifySpawn ? (pid) => lane.spawned(task.id, pid) : undefined);
  if (task.abortable) abortable.set(task.id, (signal) => control.abort(signal));
  try {
    if (fitsFastPath(task.spec, engine)) {
      const io = fastIo(task.spec);
      const started = await start(task, control, async (plan) => spawnFastAwaitable(engine, plan, io)).finally(() => closeParentFds(task.spec));
      if (!('pid' in started)) return notStarted(timing, started);
      return await superviseFast(task, started, control, timing);
    }
    const started = await start(task, control, (plan) => engine.spawn(plan)).finally(() => closeParentFds(task.spec));
    if (!('pid' in started)) return notStarted(timing, started);
    return await supervise(task, started, control, timing);
  } finally {
    abortable.delete(task.id);
    control.finish();
  }
}

/** What every run does once it has a child: the one way to end it, the timeout wired to it. */
function endingFor(task: WorkerTask, child: Pick<SpawnedChild, 'kill'>, onTimeout?: () => void) {
  const ending = new Ending(child, task.killSignal, task.killGraceMs);
  live.set(ending, task.id);
  if (destroyed) endAll();
  const timer = task.timeoutMs === undefined ? undefined : setTimeout(() => {
    ending.request('ETIMEDOUT', `timed out after ${task.timeoutMs} ms`);
    onTimeout?.();
  }, task.timeoutMs);
  return { ending, timer };
}

/** Aborts from the control port go to the ending (and one that came before the spawn is applied now). */
function wireAbort(task: WorkerTask, control: ControlChannel, pid: number, ending: Ending, helper?: HelperChannel): void {
  const abort = (signal?: number) => ending.request('EABORTED', 'aborted', signal ?? task.killSignal);
  control.started(pid, abort, helper);
  if (control.pendingAbort) abort(control.pendingAbort.signal);
}

function fastOutcome(task: WorkerTask, pid: number, record: FastRecord, ending: Ending, timing: Timing, spawnMs: number): RunOutcome {
  const { spec } = task;
  const lost = record.rawStatus < 0 ? { code: 'ECHILD', message: 'its exit status was lost (reaped elsewhere)' } : undefined;
  const overflow = record.overflowed ? { code: 'EMAXBUFFER', message: `output went past maxBuffer (${spec.maxBuffer} bytes)` } : undefined;
  const combined = spec.stdout.kind === 'combined';
  return {
    pid,
    rawStatus: record.rawStatus < 0 ? undefined : record.rawStatus,
    failure: ending.reason ?? overflow ?? lost,
    stdout: combined ? undefined : record.stdout,
    output: combined ? record.stdout : undefined,
    stderr: record.stderr,
    stderrTail: record.stderrTail,
    durationMs: sharedNow() - timing.startedAt,
    queueWaitMs: timing.queueWaitMs,
    spawnMs,
  };
}

/** The fast path with a control port: the addon feeds, captures and reaps; this side keeps the timers and the reasons. */
async function superviseFast(task: WorkerTask, child: FastChild & { readonly done: Promise<FastRecord> }, control: ControlChannel, timing: Timing): Promise<RunOutcome> {
  const spawnMs = sharedNow() - timing.startedAt;
  const { ending, timer } = endingFor(task, child);
  wireAbort(task, control, child.pid, ending);
  const record = await child.done;
  clearTimeout(timer);
  ending.settle();
  live.delete(ending);
  return fastOutcome(task, child.pid, record, ending, timing, spawnMs);
}

async function supervise(task: WorkerTask, child: SpawnedChild, control: ControlChannel, timing: Timing): Promise<RunOutcome> {
  const { spec } = task;
  const spawnMs = sharedNow() - timing.startedAt;
  const { ending, timer } = endingFor(task, child, () => {
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

  wireAbort(task, control, child.pid, ending, child.helper);

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
    durationMs: sharedNow() - timing.startedAt,
    queueWaitMs: timing.queueWaitMs,
    spawnMs,
  };
}
