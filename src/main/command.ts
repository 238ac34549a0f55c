import { format } from 'node:util';
import { writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { CommandError, invalidArgument } from '../shared/errors.js';
import { commandLine, type CommandLineOptions } from '../shared/quote.js';
import {
  DEFAULT_MAX_BUFFER,
  CAPABILITIES,
  NO_ATTRIBUTES,
  NULL_WIRING,
  SPEC_DEFAULTS,
  sharedIfDefault,
  type ProcessAttributes, type CommandSpec, type InputWiring, type OutputEncoding, type OutputWiring, type PassedFd, type SendBuffer, type SessionMode,
} from '../shared/spec.js';
import {
  checkByteCount, checkEnvName, checkEnvValue, checkFd, checkId, checkLimit, checkPath, toArg, toBytes, type ArgValue,
} from './validate.js';
import { signalNumber } from '../shared/status.js';
import { resolveBinary } from '../shared/resolve.js';
import { runCommand, runCommandAsync, type RunOptions } from './run.js';
import type { AnyCapture, Captured, RunResult } from './result.js';
import type { RunningCommand } from './running.js';

export type { ArgValue } from './validate.js';

export interface CaptureOptions<E extends OutputEncoding = OutputEncoding> {
  /** 'utf8' (default) gives strings; 'buffer' gives Uint8Array. */
  encoding?: E;
}

export interface PassFdOptions {
  /** Close the parent's copy once the child is spawned (or the run fails). */
  closeParent?: boolean;
}

const COMMON_ENV = ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'PATH', 'HOME', 'USER', 'LOGNAME', 'TMPDIR'] as const;
const ENCODINGS = new Set<string>(['buffer', 'utf8', 'utf-8', 'utf16le', 'utf-16le', 'ucs2', 'ucs-2', 'latin1', 'binary', 'ascii', 'base64', 'base64url', 'hex']);

/** @internal how run.ts reads a command without widening the public surface. */
export const toSpec = Symbol('spawnpool.toSpec');

/** The attributes as setters leave them; allowCap() collects a set. */
type AttributeDraft = { -readonly [K in Exclude<keyof ProcessAttributes, 'allowedCaps'>]: ProcessAttributes[K] } & {
  allowedCaps: Set<number> | undefined;
};

function attributesOf(draft: AttributeDraft): ProcessAttributes {
  return sharedIfDefault({ ...draft, allowedCaps: draft.allowedCaps ? [...draft.allowedCaps] : NO_ATTRIBUTES.allowedCaps });
}

/**
 * A command to run, built step by step like libvirt's virCommand. Every
 * setter validates at once (CommandError EINVAL) and returns `this`; the
 * command is plain data until run, and can be run again.
 */
export class Command<Out extends AnyCapture = undefined, Err extends AnyCapture = undefined, Combined extends AnyCapture = undefined> {
  #binary: string;
  #args: string[] = [];
  #env: Map<string, string> | null = null;
  #cwd: string | undefined;
  #stdin: InputWiring = NULL_WIRING;
  #stdout: OutputWiring = NULL_WIRING;
  #stderr: OutputWiring = NULL_WIRING;
  /** Made on first use, as the caps' set: most commands pass no fd. */
  #passFds: Map<number, PassedFd> | undefined;
  #rawStatus = false;
  #maxBuffer = DEFAULT_MAX_BUFFER;
  #nonblocking = false;
  /** Made on first use, as the fds': most commands send none. */
  #sendBuffers: SendBuffer[] | undefined;
  #session: SessionMode = 'inherit';
  /**
   * The process attributes, made on the first setter: most commands set
   * none, and fourteen fields more per command cost every run() a larger
   * object to build, interpret and optimise.
   */
  #attrs: AttributeDraft | undefined;

  constructor(binary: string, ...args: ArgValue[]) {
    this.#binary = checkPath('new Command()', 'binary', binary, String(binary));
    this.args(args);
  }

  /** argv[0] is the binary; the rest are its arguments. */
  static fromArgv(argv: readonly ArgValue[]): Command {
    if (!Array.isArray(argv) || argv.length === 0) {
      throw invalidArgument('Command.fromArgv()', 'argv must be a non-empty array', '');
    }
    const [binary, ...rest] = argv;
    return new Command(toArg('Command.fromArgv()', binary, 'argv[0]', ''), ...rest);
  }

  // ---- arguments -------------------------------------------------------

  arg(value: ArgValue): this {
    this.#args.push(toArg('arg()', value, 'argument', this.#binary));
    return this;
  }

  /** One argument `name=value`. */
  argPair(name: ArgValue, value: ArgValue): this {
    const n = toArg('argPair()', name, 'name', this.#binary);
    const v = toArg('argPair()', value, 'value', this.#binary);
    this.#args.push(`${n}=${v}`);
    return this;
  }

  /** printf-style, with util.format rules. */
  argFormat(fmt: string, ...values: unknown[]): this {
    if (typeof fmt !== 'string') throw invalidArgument('argFormat()', 'format must be a string', this.#binary);
    this.#args.push(toArg('argFormat()', format(fmt, ...values), 'formatted argument', this.#binary));
    return this;
  }

  args(...values: ArgValue[] | [readonly ArgValue[]]): this {
    const list = values.length === 1 && Array.isArray(values[0]) ? values[0] : values;
    // Convert all first, so a bad element leaves the command unchanged.
    const converted = (list as readonly unknown[]).map((v, i) => toArg('args()', v, `argument ${i}`, this.#binary));
    this.#args.push(...converted);
    return this;
  }

  /** argv without the binary. */
  getArgList(): string[] {
    return [...this.#args];
  }

  /** The absolute path the binary resolves to now, on this process's PATH. */
  binaryPath(): string {
    const found = resolveBinary(this.#binary, process.env.PATH, process.cwd());
    if (typeof found !== 'string') {
      throw new CommandError(found.code, found.message, { command: this.toString() });
    }
    return found;
  }

  // ---- environment -----------------------------------------------------

  #ownEnv(): Map<string, string> {
    return (this.#env ??= new Map());
  }

  /** LC_ALL=C, and the usual login variables where set. */
  envPassCommon(): this {
    const env = this.#ownEnv();
    env.set('LC_ALL', 'C');
    for (const name of COMMON_ENV) {
      const value = process.env[name];
      if (value !== undefined) env.set(name, value);
    }
    return this;
  }

  /** Pass one variable from this process, if set now. */
  envPass(name: string): this {
    checkEnvName('envPass()', name, this.#binary);
    const env = this.#ownEnv();
    const value = process.env[name];
    if (value !== undefined) env.set(name, checkEnvValue('envPass()', name, value, this.#binary));
    return this;
  }

  envPair(name: string, value: ArgValue): this {
    checkEnvName('envPair()', name, this.#binary);
    const text = toArg('envPair()', value, `value of ${name}`, this.#binary);
    this.#ownEnv().set(name, text);
    return this;
  }

  envString(entry: string): this {
    if (typeof entry !== 'string') throw invalidArgument('envString()', 'entry must be a string', this.#binary);
    const eq = entry.indexOf('=');
    if (eq < 0) throw invalidArgument('envString()', `${JSON.stringify(entry)} has no '='`, this.#binary);
    const name = checkEnvName('envString()', entry.slice(0, eq), this.#binary);
    this.#ownEnv().set(name, checkEnvValue('envString()', name, entry.slice(eq + 1), this.#binary));
    return this;
  }

  /** Start from an empty environment. */
  envClear(): this {
    this.#env = new Map();
    return this;
  }

  envXDG(baseDir: string): this {
    const base = checkPath('envXDG()', 'baseDir', baseDir, this.#binary);
    const env = this.#ownEnv();
    env.set('XDG_DATA_HOME', `${base}/.local/share`);
    env.set('XDG_CACHE_HOME', `${base}/.cache`);
    env.set('XDG_CONFIG_HOME', `${base}/.config`);
    return this;
  }

  // ---- process attributes ----------------------------------------------

  #draft(): AttributeDraft {
    return (this.#attrs ??= { ...NO_ATTRIBUTES, allowedCaps: undefined });
  }

  cwd(dir: string): this {
    const checked = checkPath('cwd()', 'directory', dir, this.#binary);
    if (this.#attrs?.daemonize) throw invalidArgument('cwd()', 'a daemon always runs in /', this.#binary);
    this.#cwd = checked;
    return this;
  }

  /**
   * setsid, cwd /, double fork: run() resolves when the intermediate exits,
   * with `result.daemonPid`. The daemon outlives the pool (no death signal).
   */
  daemonize(): this {
    if (this.#cwd !== undefined) throw invalidArgument('daemonize()', 'a daemon always runs in /: drop cwd()', this.#binary);
    const buffer = this.#bufferMethod();
    if (buffer) throw invalidArgument('daemonize()', `a daemon cannot use ${buffer}`, this.#binary);
    if (this.#attrs?.parentDeathSignal !== undefined) {
      throw invalidArgument('daemonize()', 'a daemon outlives its spawner: drop parentDeathSignal()', this.#binary);
    }
    this.#draft().daemonize = true;
    return this;
  }

  /** Needs daemonize(): the daemon writes its pid there, holding a write lock, before run() resolves. */
  pidFile(path: string): this {
    this.#draft().pidFile = checkPath('pidFile()', 'path', path, this.#binary);
    return this;
  }

  /** Drop every capability (effective, permitted, inheritable, bounding) but those allowCap() names. */
  clearCaps(): this {
    this.#draft().clearCaps = true;
    return this;
  }

  /** Keep one capability ('CAP_NET_ADMIN' or its number) when the others are dropped; raised as ambient for a non-root uid. */
  allowCap(cap: string | number): this {
    let num: number;
    if (typeof cap === 'string') {
      num = CAPABILITIES.indexOf(cap.toUpperCase().startsWith('CAP_') ? cap.toUpperCase() : `CAP_${cap.toUpperCase()}`);
      if (num < 0) throw invalidArgument('allowCap()', `unknown capability ${JSON.stringify(cap)}`, this.#binary);
    } else if (typeof cap === 'number' && Number.isInteger(cap) && cap >= 0 && cap <= 63) {
      num = cap;
    } else {
      throw invalidArgument('allowCap()', `capability must be a name such as 'CAP_NET_ADMIN' or a number from 0 to 63, got ${String(cap)}`, this.#binary);
    }
    (this.#draft().allowedCaps ??= new Set()).add(num);
    return this;
  }

  /** setreuid; with clearCaps()/allowCap() the allowed caps survive as ambient. */
  uid(n: number): this {
    this.#draft().uid = checkId('uid()', n, this.#binary);
    return this;
  }

  /** setregid, and setgroups with the supplementary groups of the uid() user (or just this gid). */
  gid(n: number): this {
    this.#draft().gid = checkId('gid()', n, this.#binary);
    return this;
  }

  umask(mask: number): this {
    this.#draft().umask = checkLimit('umask()', mask, this.#binary, 0o777);
    return this;
  }

  /** RLIMIT_NPROC, soft = hard. */
  maxProcesses(n: number): this {
    this.#draft().maxProcesses = checkLimit('maxProcesses()', n, this.#binary);
    return this;
  }

  /** RLIMIT_NOFILE, soft = hard. */
  maxFiles(n: number): this {
    this.#draft().maxFiles = checkLimit('maxFiles()', n, this.#binary);
    return this;
  }

  /** RLIMIT_MEMLOCK in bytes, soft = hard. */
  maxMemLock(bytes: number): this {
    this.#draft().maxMemLock = checkLimit('maxMemLock()', bytes, this.#binary);
    return this;
  }

  /** RLIMIT_CORE in bytes, soft = hard. */
  maxCoreSize(bytes: number): this {
    this.#draft().maxCoreSize = checkLimit('maxCoreSize()', bytes, this.#binary);
    return this;
  }

  /** PR_SET_NO_NEW_PRIVS: exec can never grant more privileges (setuid bits, file caps). */
  noNewPrivileges(): this {
    this.#draft().noNewPrivileges = true;
    return this;
  }

  /** PR_SET_PDEATHSIG: the signal the child gets when the thread that spawned it ends (default SIGKILL). */
  parentDeathSignal(sig: NodeJS.Signals | number): this {
    const num = signalNumber(sig);
    if (num === undefined || num === 0) throw invalidArgument('parentDeathSignal()', `unknown signal ${String(sig)}`, this.#binary);
    if (this.#attrs?.daemonize) throw invalidArgument('parentDeathSignal()', 'a daemon outlives its spawner', this.#binary);
    this.#draft().parentDeathSignal = num;
    return this;
  }

  /** runAsync() only: the child stops just before exec until `handle.handshakeNotify()`. */
  requireHandshake(): this {
    this.#draft().handshake = true;
    return this;
  }

  /** The buffer a daemon cannot have, if one is set. */
  #bufferMethod(): string | undefined {
    if (this.#stdin.kind === 'buffer') return 'inputBuffer()';
    if (this.#stdout.kind === 'combined') return 'captureCombined()';
    if (this.#stdout.kind === 'capture') return 'captureOutput()';
    if (this.#stderr.kind === 'capture') return 'captureError()';
    return undefined;
  }

  // ---- file descriptors and stdio --------------------------------------

  /** The child gets `fd` at the same number. */
  passFd(fd: number, opts: PassFdOptions = {}): this {
    checkFd('passFd()', fd, this.#binary, 3);
    if (this.#sendBuffers?.some((b) => b.fd === fd)) {
      throw invalidArgument('passFd()', `the child's fd ${fd} is already a sendBuffer() pipe: pass fds before sending buffers`, this.#binary);
    }
    const closeParent = Boolean(opts.closeParent) || Boolean(this.#passFds?.get(fd)?.closeParent);
    (this.#passFds ??= new Map()).set(fd, { fd, closeParent });
    return this;
  }

  /**
   * The child reads `data` through a pipe at the returned fd number (≥ 3,
   * the lowest no passFd() or earlier sendBuffer() holds); name it to the
   * child, e.g. `.arg(\`--secret-fd=${fd}\`)`. Written while the child runs,
   * beside stdin and the captures, so it may be of any size. A daemon may
   * take one: its run() resolves once all of it is written into the pipe
   * (or rejects ETIMEDOUT at timeoutMs; the daemon keeps running).
   */
  sendBuffer(data: string | Uint8Array): number {
    const bytes = toBytes('sendBuffer()', data, this.#binary);
    let fd = 3;
    while (this.#passFds?.has(fd) || this.#sendBuffers?.some((b) => b.fd === fd)) fd++;
    (this.#sendBuffers ??= []).push({ fd, data: bytes });
    return fd;
  }

  /**
   * virCommandNonblockingFDs: the parent's ends of the pipes it reads are
   * non-blocking. Here they always are (each worker serves its pipes from
   * its event loop), so this only states it; the child's ends stay blocking.
   */
  nonblockingFds(): this {
    this.#nonblocking = true;
    return this;
  }

  inputFd(fd: number): this {
    return this.#setInput('inputFd()', { kind: 'fd', fd: checkFd('inputFd()', fd, this.#binary) });
  }

  outputFd(fd: number): this {
    return this.#setOutput('outputFd()', 'stdout', { kind: 'fd', fd: checkFd('outputFd()', fd, this.#binary) });
  }

  errorFd(fd: number): this {
    return this.#setOutput('errorFd()', 'stderr', { kind: 'fd', fd: checkFd('errorFd()', fd, this.#binary) });
  }

  /** runAsync() only: `handle.stdin` is a Writable feeding the child's stdin. */
  inputPipe(): this {
    return this.#setInput('inputPipe()', { kind: 'pipe' });
  }

  /** runAsync() only: `handle.stdout` is a Readable of the child's stdout, with backpressure. */
  outputPipe(): this {
    return this.#setOutput('outputPipe()', 'stdout', { kind: 'pipe' });
  }

  /** runAsync() only: `handle.stderr` is a Readable of the child's stderr, with backpressure. */
  errorPipe(): this {
    return this.#setOutput('errorPipe()', 'stderr', { kind: 'pipe' });
  }

  /** Fed to stdin; the child closing stdin early is not an error. */
  inputBuffer(data: string | Uint8Array): this {
    return this.#setInput('inputBuffer()', { kind: 'buffer', data: toBytes('inputBuffer()', data, this.#binary) });
  }

  /** `result.stdout`: a string, or a Uint8Array with `{ encoding: 'buffer' }` (the command's type says which). */
  captureOutput<E extends OutputEncoding = 'utf8'>(opts: CaptureOptions<E> = {}): Command<Captured<E>, Err, Combined> {
    this.#setOutput('captureOutput()', 'stdout', { kind: 'capture', encoding: this.#encoding('captureOutput()', opts) });
    return this as Command<AnyCapture, AnyCapture, AnyCapture> as Command<Captured<E>, Err, Combined>;
  }

  /** `result.stderr`, likewise. */
  captureError<E extends OutputEncoding = 'utf8'>(opts: CaptureOptions<E> = {}): Command<Out, Captured<E>, Combined> {
    this.#setOutput('captureError()', 'stderr', { kind: 'capture', encoding: this.#encoding('captureError()', opts) });
    return this as Command<AnyCapture, AnyCapture, AnyCapture> as Command<Out, Captured<E>, Combined>;
  }

  /** stdout and stderr interleaved in write order into `result.output`. */
  captureCombined<E extends OutputEncoding = 'utf8'>(opts: CaptureOptions<E> = {}): Command<Out, Err, Captured<E>> {
    const wiring: OutputWiring = { kind: 'combined', encoding: this.#encoding('captureCombined()', opts) };
    this.#checkOutput('captureCombined()', 'stderr', wiring);
    this.#setOutput('captureCombined()', 'stdout', wiring);
    this.#setOutput('captureCombined()', 'stderr', wiring);
    return this as Command<AnyCapture, AnyCapture, AnyCapture> as Command<Out, Err, Captured<E>>;
  }

  /** Per captured stream; past it the child is killed (EMAXBUFFER). */
  maxBuffer(bytes: number): this {
    this.#maxBuffer = checkByteCount('maxBuffer()', bytes, this.#binary);
    return this;
  }

  /** The child leads a new session (setsid): no controlling terminal; kills reach its whole group. */
  newSession(): this {
    this.#session = 'session';
    return this;
  }

  /**
   * The child leads its own process group: timeout, abort and destroy signal
   * the whole group, so its own children die with it.
   */
  processGroup(): this {
    if (this.#session === 'inherit') this.#session = 'group';
    return this;
  }

  /** `result.status` is the raw wait status, signal deaths included. */
  rawStatus(): this {
    this.#rawStatus = true;
    return this;
  }

  #encoding(method: string, opts: CaptureOptions): OutputEncoding {
    if (opts === null || typeof opts !== 'object') throw invalidArgument(method, 'options must be an object', this.#binary);
    const encoding = opts.encoding ?? 'utf8';
    if (!ENCODINGS.has(encoding)) throw invalidArgument(method, `unknown encoding ${JSON.stringify(encoding)}`, this.#binary);
    return encoding;
  }

  #setInput(method: string, wiring: InputWiring): this {
    if (this.#attrs?.daemonize && wiring.kind === 'buffer') throw invalidArgument(method, 'a daemon cannot use buffers', this.#binary);
    if (this.#stdin.kind !== 'null' && this.#stdin.kind !== wiring.kind) {
      throw invalidArgument(method, `stdin is already wired as ${this.#stdin.kind}`, this.#binary);
    }
    this.#stdin = wiring;
    return this;
  }

  #checkOutput(method: string, stream: 'stdout' | 'stderr', wiring: OutputWiring): void {
    const current = stream === 'stdout' ? this.#stdout : this.#stderr;
    if (current.kind !== 'null' && current.kind !== wiring.kind) {
      throw invalidArgument(method, `${stream} is already wired as ${current.kind}`, this.#binary);
    }
  }

  #setOutput(method: string, stream: 'stdout' | 'stderr', wiring: OutputWiring): this {
    if (this.#attrs?.daemonize && (wiring.kind === 'capture' || wiring.kind === 'combined')) {
      throw invalidArgument(method, 'a daemon cannot use buffers', this.#binary);
    }
    this.#checkOutput(method, stream, wiring);
    if (stream === 'stdout') this.#stdout = wiring;
    else this.#stderr = wiring;
    return this;
  }

  // ---- logging -----------------------------------------------------------

  /** Env settings then argv, quoted only where a POSIX shell needs it. */
  toString(opts: CommandLineOptions = {}): string {
    return commandLine(this.#env && [...this.#env], [this.#binary, ...this.#args], opts);
  }

  /** Writes the one-line form plus a newline. */
  writeArgLog(target: number | Writable): void {
    const line = `${this.toString()}\n`;
    if (typeof target === 'number') {
      checkFd('writeArgLog()', target, this.#binary);
      writeSync(target, line);
    } else if (target && typeof target.write === 'function') {
      target.write(line);
    } else {
      throw invalidArgument('writeArgLog()', 'target must be an fd or a Writable', this.#binary);
    }
  }

  // ---- running -------------------------------------------------------------

  run(opts?: RunOptions): Promise<RunResult<Out, Err, Combined>> {
    return runCommand(this[toSpec](), opts) as Promise<RunResult<Out, Err, Combined>>;
  }

  runAsync(opts?: RunOptions): Promise<RunningCommand<Out, Err, Combined>> {
    return runCommandAsync(this[toSpec](), opts) as Promise<RunningCommand<Out, Err, Combined>>;
  }

  /** @internal */
  [toSpec](): CommandSpec {
    return {
      binary: this.#binary,
      args: [...this.#args],
      env: this.#env && [...this.#env],
      cwd: this.#cwd,
      stdin: this.#stdin,
      stdout: this.#stdout,
      stderr: this.#stderr,
      passFds: this.#passFds ? [...this.#passFds.values()] : SPEC_DEFAULTS.passFds,
      sendBuffers: this.#sendBuffers ? [...this.#sendBuffers] : SPEC_DEFAULTS.sendBuffers,
      rawStatus: this.#rawStatus,
      maxBuffer: this.#maxBuffer,
      nonblockingFds: this.#nonblocking,
      session: this.#session,
      attrs: this.#attrs === undefined ? NO_ATTRIBUTES : attributesOf(this.#attrs),
    };
  }
}
