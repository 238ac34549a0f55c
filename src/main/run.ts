import { MessageChannel, isMainThread, type MessagePort } from 'node:worker_threads';
import { loadNativeAddon } from '../shared/native-addon.js';
import { sharedNow } from '../shared/clock.js';
import * as Comlink from 'comlink';
import { CommandError } from '../shared/errors.js';
import { commandLine } from '../shared/quote.js';
import type { ChildControl, RunOutcome } from '../shared/protocol.js';
import type { TaskDraft } from './lane.js';
import { NO_ATTRIBUTES, hasPipe, type CommandSpec } from '../shared/spec.js';
import { defaultPool } from './default-pool.js';
import { activeDryRun } from './dry-run.js';
import { checkOptions, type CheckedOptions, type RunOptions } from './options.js';
import { RunControl, submit } from './pool.js';
import { exitedNormally } from '../shared/status.js';
import { settle } from './outcome.js';
import type { RunResult } from './result.js';
import { RunningCommand, type RunHandle } from './running.js';
import { attachPipes } from './pipes.js';
import { rpcEndpoint } from '../shared/stream-frames.js';
import { Readable, Writable } from 'node:stream';

export type { RunOptions } from './options.js';

/**
 * The child's environment as the worker passes it: inherit means this
 * thread's process.env now. On the main thread that is the process's real
 * environment, which the addon copies out in one call: enumerating
 * process.env costs a getter, a lock and a string per variable, and was
 * the largest part of the main thread's work per run.
 */
function childEnv(spec: CommandSpec): readonly string[] | Uint8Array {
  if (spec.env) return spec.env.map(([k, v]) => `${k}=${v}`);
  const native = isMainThread ? loadNativeAddon() : undefined;
  if (native && 'addon' in native) return native.addon.environBlock();
  const out: string[] = [];
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out.push(`${k}=${v}`);
  return out;
}

function makeTask(spec: CommandSpec, o: CheckedOptions, port: MessagePort | undefined): TaskDraft {
  const task: TaskDraft = {
    id: 0,
    spec,
    env: childEnv(spec),
    parentCwd: process.cwd(),
    killSignal: o.killSignal,
    killGraceMs: o.killGraceMs,
    postedAt: sharedNow(),
  };
  // Only a bare name is looked up; a process.env read is not free on the main thread.
  if (!spec.binary.includes('/')) task.searchPath = process.env.PATH;
  if (o.timeoutMs !== undefined) task.timeoutMs = o.timeoutMs;
  if (port !== undefined) task.port = port;
  return task;
}

/** Under a dry run, pipes give the handler's output and swallow input. */
function dryRunPipes(spec: CommandSpec, outcome: RunOutcome): Pick<RunHandle, 'stdin' | 'stdout' | 'stderr'> {
  const from = (bytes: Uint8Array | undefined) => Readable.from(bytes && bytes.byteLength > 0 ? [Buffer.from(bytes)] : []);
  return {
    stdin: spec.stdin.kind === 'pipe' ? new Writable({ write: (_chunk, _enc, cb) => cb() }) : undefined,
    stdout: spec.stdout.kind === 'pipe' ? from(outcome.stdout) : undefined,
    stderr: spec.stderr.kind === 'pipe' ? from(outcome.stderr) : undefined,
  };
}

function abortedBeforeStart(command: () => string): CommandError {
  return new CommandError('EABORTED', `Cannot run ${command()}: aborted before it was spawned`, { command: command() });
}

/**
 * The command's toString(), built when first needed: an error message or a
 * result's `command`. Quoting every word of every run cost more than the
 * rest of what the main thread does for it.
 */
function lazyCommandLine(spec: CommandSpec): () => string {
  let line: string | undefined;
  return () => (line ??= commandLine(spec.env, [spec.binary, ...spec.args]));
}

/**
 * runAsync() of a command with no pipe and no handshake: nothing needs a
 * port of its own. Its pid and an abort travel on the lane: a port and its
 * RPC cost the main thread more than everything else a run does.
 */
class LaneRun implements RunHandle {
  pid = 0;
  readonly outcome: Promise<RunOutcome>;
  readonly #control: RunControl;
  readonly #spawned: Promise<number>;

  constructor(private readonly spec: CommandSpec, o: CheckedOptions, private readonly command: () => string) {
    let resolveSpawned!: (pid: number) => void;
    this.#spawned = new Promise<number>((resolve) => (resolveSpawned = resolve));
    this.#control = new RunControl(resolveSpawned);
    const pool = o.pool ?? defaultPool();
    // The pool wires the AbortSignal from the start: queued, sent or spawned.
    this.outcome = pool[submit](makeTask(spec, o, undefined), command, o.signal, this.#control);
    // A run that never started, or ended before its pid came: the outcome says.
    this.outcome.then((outcome) => resolveSpawned(outcome.pid), () => resolveSpawned(0));
  }

  /** The pid once spawned; 0 when it could not be started. */
  async spawned(): Promise<number> {
    this.pid = await this.#spawned;
    return this.pid;
  }

  async finish(wantStatus: boolean): Promise<RunResult> {
    return settle(this.spec, await this.outcome, this.command, wantStatus);
  }

  async abort(signal: number | undefined): Promise<void> {
    this.#control.abort(signal);
    await this.outcome.catch(() => undefined);
  }

  async handshakeWait(): Promise<void> {
    throw noHandshake('handshakeWait()', this.command(), this.pid);
  }

  async handshakeNotify(): Promise<void> {
    throw noHandshake('handshakeNotify()', this.command(), this.pid);
  }
}

function noHandshake(method: string, command: string, pid: number): CommandError {
  return new CommandError('EINVAL', `${method}: the command has no requireHandshake()`, { command, pid });
}

const quiet = (): void => undefined;

/** A run on a pool with a control port of its own: runAsync() with pipes or a handshake. */
class PooledRun implements RunHandle {
  pid = 0;
  readonly outcome: Promise<RunOutcome>;
  readonly stdin: Writable | undefined;
  readonly stdout: Readable | undefined;
  readonly stderr: Readable | undefined;
  readonly #port: MessagePort;
  readonly #remote: Comlink.Remote<ChildControl>;
  readonly #delivered: Promise<void>;
  #over = false;

  constructor(private readonly spec: CommandSpec, o: CheckedOptions, private readonly command: () => string) {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#remote = Comlink.wrap<ChildControl>(rpcEndpoint(port1));
    const pipes = attachPipes(spec, port1);
    this.stdin = pipes?.stdin;
    this.stdout = pipes?.stdout;
    this.stderr = pipes?.stderr;
    this.#delivered = pipes?.ended ?? Promise.resolve();
    // Until the caller holds them: a run that cannot start closes its
    // streams with an error that nobody could listen to, and an 'error'
    // without a listener would end the process.
    for (const s of [this.stdin, this.stdout, this.stderr]) s?.on('error', quiet);
    const pool = o.pool ?? defaultPool();
    this.outcome = pool[submit](makeTask(spec, o, port2), command).finally(async () => {
      this.#over = true;
      // Output frames may still be on their way: the port closes after them.
      await this.#delivered;
      this.#port.close();
    });
    // Callers may never wait(); the outcome is still settled and observed here.
    this.outcome.catch(() => undefined);
  }

  /** The streams go to the caller: their errors are the caller's from now on. */
  handOut(): void {
    for (const s of [this.stdin, this.stdout, this.stderr]) s?.off('error', quiet);
  }

  /** The pid once spawned; 0 when it could not be started. */
  async spawned(): Promise<number> {
    this.pid = await Promise.race([this.#remote.spawned(), this.outcome.then((o) => o.pid, () => 0)]);
    return this.pid;
  }

  async finish(wantStatus: boolean): Promise<RunResult> {
    return settle(this.spec, await this.outcome, this.command, wantStatus);
  }

  async handshakeWait(): Promise<void> {
    if (!this.spec.attrs.handshake) throw noHandshake('handshakeWait()', this.command(), this.pid);
    // The outcome may arrive before the port's answer. A child that exited
    // normally had exec'd, which it does only once notified: it was ready.
    const ended = this.outcome.then(
      (o) => o.failure ?? (o.rawStatus !== undefined && exitedNormally(o.rawStatus)
        ? undefined : { code: 'ESPAWN', message: 'the child ended before the handshake' }),
      () => ({ code: 'ESPAWN', message: 'the run failed before the handshake' }));
    const failure = await Promise.race([this.#remote.handshakeWait(), ended]);
    if (failure) {
      throw new CommandError(failure.code, `handshakeWait(): ${this.command()}: ${failure.message}`, { command: this.command(), pid: this.pid });
    }
  }

  async handshakeNotify(): Promise<void> {
    if (!this.spec.attrs.handshake) throw noHandshake('handshakeNotify()', this.command(), this.pid);
    if (this.#over) return;
    await Promise.race([this.#remote.handshakeNotify(), this.outcome.then(() => undefined, () => undefined)]);
  }

  async abort(signal: number | undefined): Promise<void> {
    if (this.#over) return;
    await Promise.race([this.#remote.abort(signal), this.outcome.then(() => undefined, () => undefined)]);
    // Reaped in the worker; also wait for its outcome, so that once abort()
    // resolves the run is over everywhere (stats included).
    await this.outcome.catch(() => undefined);
  }
}

/** Settings that only make sense together, or with one way of running. */
function checkFits(spec: CommandSpec, command: () => string, method: 'run()' | 'runAsync()'): void {
  // Most commands: nothing that could conflict.
  if (spec.attrs === NO_ATTRIBUTES && !hasPipe(spec)) return;
  // Pipes are handles on a running child: run() has none to give.
  const piped = method === 'run()' ? [spec.stdin.kind === 'pipe' && 'inputPipe()', spec.stdout.kind === 'pipe' && 'outputPipe()',
    spec.stderr.kind === 'pipe' && 'errorPipe()'].filter(Boolean) : [];
  const problem = piped.length > 0 ? `${piped.join(', ')} need runAsync()`
    : spec.attrs.pidFile !== undefined && !spec.attrs.daemonize ? 'pidFile() needs daemonize()'
    : method === 'runAsync()' && spec.attrs.daemonize ? 'daemonize() needs run(): it resolves when the intermediate exits'
    : method === 'run()' && spec.attrs.handshake ? 'requireHandshake() needs runAsync(): nobody could notify the child'
    : undefined;
  if (problem) throw new CommandError('EINVAL', `${method}: ${problem}`, { command: command() });
}

export async function runCommand(spec: CommandSpec, opts?: RunOptions): Promise<RunResult> {
  const command = lazyCommandLine(spec);
  const o = checkOptions(opts, command);
  checkFits(spec, command, 'run()');
  const dry = activeDryRun();
  if (dry) return settle(spec, await dry.execute(spec, command()), command, o.status);
  if (o.signal?.aborted) throw abortedBeforeStart(command);
  const pool = o.pool ?? defaultPool();
  return settle(spec, await pool[submit](makeTask(spec, o, undefined), command, o.signal), command, o.status);
}

export async function runCommandAsync(spec: CommandSpec, opts?: RunOptions): Promise<RunningCommand> {
  const command = lazyCommandLine(spec);
  const o = checkOptions(opts, command);
  checkFits(spec, command, 'runAsync()');
  const dry = activeDryRun();
  if (dry) {
    const outcome = await dry.execute(spec, command());
    return new RunningCommand({
      pid: 0,
      ...dryRunPipes(spec, outcome),
      finish: async (wantStatus) => settle(spec, outcome, command, wantStatus),
      abort: async () => undefined,
      handshakeWait: async () => undefined,
      handshakeNotify: async () => undefined,
    }, o.status);
  }
  if (o.signal?.aborted) throw abortedBeforeStart(command);
  const run = hasPipe(spec) || spec.attrs.handshake ? new PooledRun(spec, o, command) : new LaneRun(spec, o, command);
  if ((await run.spawned()) === 0) {
    // Could not start: settle() turns the outcome into its CommandError.
    await run.finish(o.status);
  }
  const handle = new RunningCommand(run, o.status);
  if (run instanceof PooledRun) run.handOut();
  if (o.signal && run instanceof PooledRun) {
    const signal = o.signal;
    const onAbort = () => void run.abort(undefined);
    // It may have fired while the run was starting: 'abort' does not fire twice.
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void run.outcome.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => undefined);
  }
  return handle;
}
