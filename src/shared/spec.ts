/**
 * The one definition of a command: plain, structured-clone-able data built
 * on the main thread by `Command` and executed by a worker.
 */

/** How the child's stdout / stderr text is presented: a Buffer encoding, or raw bytes. */
export type OutputEncoding = BufferEncoding | 'buffer';

export type InputWiring =
  | { readonly kind: 'null' }
  | { readonly kind: 'fd'; readonly fd: number }
  | { readonly kind: 'pipe' }
  | { readonly kind: 'buffer'; readonly data: Uint8Array };

export type OutputWiring =
  | { readonly kind: 'null' }
  | { readonly kind: 'fd'; readonly fd: number }
  | { readonly kind: 'pipe' }
  | { readonly kind: 'capture'; readonly encoding: OutputEncoding }
  /** stdout and stderr share one pipe, captured into `output`. */
  | { readonly kind: 'combined'; readonly encoding: OutputEncoding };

export interface PassedFd {
  readonly fd: number;
  readonly closeParent: boolean;
}

/** sendBuffer(): the child reads `data` from a pipe at `fd`. */
export interface SendBuffer {
  readonly fd: number;
  readonly data: Uint8Array;
}

export interface CommandSpec {
  /** As given: a bare name, or a path. */
  readonly binary: string;
  /** argv[1..] */
  readonly args: readonly string[];
  /** null: inherit the parent's environment; else exactly these, in order. */
  readonly env: ReadonlyArray<readonly [string, string]> | null;
  readonly cwd: string | undefined;
  readonly stdin: InputWiring;
  readonly stdout: OutputWiring;
  readonly stderr: OutputWiring;
  readonly passFds: readonly PassedFd[];
  readonly sendBuffers: readonly SendBuffer[];
  readonly rawStatus: boolean;
  readonly maxBuffer: number;
  readonly nonblockingFds: boolean;
  /** 'group': its own process group; 'session': setsid. Either way, kills reach the whole group. */
  readonly session: SessionMode;
  /** umask, rlimits, capabilities, credentials, prctl options, daemon, handshake. */
  readonly attrs: ProcessAttributes;
}

/**
 * The "Process attributes" of DESIGN.md beyond cwd and session. Undefined or
 * false: inherited from the spawning thread as it is.
 */
export interface ProcessAttributes {
  readonly umask: number | undefined;
  readonly maxProcesses: number | undefined;
  readonly maxFiles: number | undefined;
  readonly maxMemLock: number | undefined;
  readonly maxCoreSize: number | undefined;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  /** clearCaps(): drop every capability but allowedCaps. */
  readonly clearCaps: boolean;
  /** Capability numbers allowCap() named; any of them also drops all others. */
  readonly allowedCaps: readonly number[];
  readonly noNewPrivileges: boolean;
  /** Replaces the default death signal (SIGKILL) of a native child. */
  readonly parentDeathSignal: number | undefined;
  readonly daemonize: boolean;
  readonly pidFile: string | undefined;
  readonly handshake: boolean;
}

/** The builder methods not named after their attribute. */
const METHODS: Partial<Record<keyof ProcessAttributes, string>> = { allowedCaps: 'allowCap', handshake: 'requireHandshake' };

/** The builder method behind each attribute that is set, for messages (ENOTSUP, EINVAL). */
export function requestedAttributes(a: ProcessAttributes): string[] {
  return (Object.keys(a) as (keyof ProcessAttributes)[])
    .filter((key) => {
      const value = a[key];
      return value !== undefined && value !== false && !(Array.isArray(value) && value.length === 0);
    })
    .map((key) => `${METHODS[key] ?? key}()`);
}

/** Linux capability names, by number (linux/capability.h). */
export const CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

export type SessionMode = 'inherit' | 'group' | 'session';

export const DEFAULT_MAX_BUFFER = 128 * 1024 * 1024;

/** An unwired stdin, stdout or stderr: one object, so a default is told by identity. */
export const NULL_WIRING = Object.freeze({ kind: 'null' }) satisfies InputWiring & OutputWiring;

/** No process attribute set: one object, so a default is told by identity. */
export const NO_ATTRIBUTES: ProcessAttributes = Object.freeze({
  umask: undefined, maxProcesses: undefined, maxFiles: undefined, maxMemLock: undefined, maxCoreSize: undefined,
  uid: undefined, gid: undefined, clearCaps: false, allowedCaps: Object.freeze([]), noNewPrivileges: false,
  parentDeathSignal: undefined, daemonize: false, pidFile: undefined, handshake: false,
});

/** A field that holds its default: the same value or shared object, or, for a list, an empty one. */
export function isDefaultValue(value: unknown, fallback: unknown): boolean {
  return value === fallback || (Array.isArray(value) && value.length === 0 && Array.isArray(fallback));
}

/** `a` itself, or NO_ATTRIBUTES when it sets nothing. */
export function sharedIfDefault(a: ProcessAttributes): ProcessAttributes {
  for (const key in NO_ATTRIBUTES) {
    const field = key as keyof ProcessAttributes;
    if (!isDefaultValue(a[field], NO_ATTRIBUTES[field])) return a;
  }
  return NO_ATTRIBUTES;
}

/** Something of it needs a JS stream: a port of its own, the stream path in the worker. */
export function hasPipe(spec: CommandSpec): boolean {
  return spec.stdin.kind === 'pipe' || spec.stdout.kind === 'pipe' || spec.stderr.kind === 'pipe';
}

/** What a Command that only names a binary and its arguments holds. */
export const SPEC_DEFAULTS: Omit<CommandSpec, 'binary' | 'args'> = Object.freeze({
  env: null,
  cwd: undefined,
  stdin: NULL_WIRING,
  stdout: NULL_WIRING,
  stderr: NULL_WIRING,
  passFds: Object.freeze([]),
  sendBuffers: Object.freeze([]),
  rawStatus: false,
  maxBuffer: DEFAULT_MAX_BUFFER,
  nonblockingFds: false,
  session: 'inherit',
  attrs: NO_ATTRIBUTES,
});

/** How much of an uncaptured stderr is kept for the error message. */
export const STDERR_TAIL_BYTES = 4096;
