import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ProcessAttributes } from './spec.js';

/** What src/worker/native/spawn.c exports. */
export interface NativeAddon {
  spawn(
    file: string, argv: readonly string[], envp: readonly string[] | Uint8Array, cwd: string | null,
    stdio: [number, number, number], keepFds: readonly number[],
    flags: SpawnFlags,
  ): { pid: number; pidfd: number; stdin: number; stdout: number; stderr: number };
  /** The process attributes the addon and the exec helper parse (attrs.h's list), in their order. */
  attributeTable(): readonly AttributeEntry[];
  /** Test-only: what spawn() would apply of `flags`, one `name value` line each (the helper's --print-attributes). */
  parsedAttributes(flags: object): string;
  /** The groups setgroups() gets for that uid/gid (-1: unset), looked up through NSS on this thread. */
  groupList(uid: number, gid: number): number[];
  /** This process's environment, each K=V ended by a NUL (what spawn() takes as envp). */
  environBlock(): Buffer;
  /** A close-on-exec pipe: [read end, write end]. */
  pipe(): [number, number];
  /** Owns the pidfd from then on; calls back once, with the raw wait status (-1: status lost). */
  watch(pidfd: number, callback: (rawStatus: number) => void): void;
  kill(pidfd: number, signal: number): boolean;
  closeFd(fd: number): void;
  /** madvise(MADV_HUGEPAGE) on the 2 MiB-aligned interior; false if the kernel refused or it is too small. */
  adviseHugePages(buffer: ArrayBuffer): boolean;
  /** This thread's fast-path runner (runner.c); `onRecords` gets RUNNER_RECORD_FIELDS values per finished run. */
  runnerOpen(onRecords: (records: RunnerRecords) => void): NativeRunner;
  /** spawn()'s arguments after the runner, then what the runner does: the child's pid. */
  runnerSpawn(
    runner: NativeRunner, file: string, argv: readonly string[], envp: readonly string[] | Uint8Array, cwd: string | null,
    stdio: [number, number, number], keepFds: readonly number[], flags: SpawnFlags, io: RunnerIo,
  ): number;
  /** false once the child is reaped. */
  runnerKill(runner: NativeRunner, id: number, signal: number): boolean;
}

/** An opaque handle. */
export type NativeRunner = { readonly __nativeRunner: unique symbol };

/** [id, input, our ends of the send pipes, their data, captureOut, captureErr, tailErr, maxBuffer, group] */
export type RunnerIo = [number, Uint8Array | null, readonly number[], readonly Uint8Array[], number, number, number, number, number];

/** Per finished run: id, raw status, overflowed, stdout (or combined), stderr, stderr tail. */
export type RunnerRecords = ReadonlyArray<number | boolean | Uint8Array | undefined>;
export const RUNNER_RECORD_FIELDS = 6;

/** One entry of attrs.h's attribute list. */
export interface AttributeEntry {
  /** A key of ProcessAttributes, or `groups` (looked up by the worker from uid and gid). */
  readonly name: string;
  readonly kind: 'rlimit' | 'int' | 'bool' | 'list';
  /** The range of the value, or of each element of a list. */
  readonly min: number;
  readonly max: number;
  /** The system call a failure names. */
  readonly step: string;
}

/** The attributes only the exec helper applies, through options of its own. */
export type HelperAttributes = 'daemonize' | 'pidFile' | 'handshake';

/** What the vfork child applies before exec: the attributes under the spec's names (attrs.h), and the session and fds. */
export interface SpawnFlags extends Partial<Omit<ProcessAttributes, HelperAttributes>> {
  /** setgroups(): the target's supplementary groups, looked up before clone. */
  groups?: readonly number[];
  setsid?: boolean;
  setpgid?: boolean;
  /** Pairs (source, target): each source fd is dup'ed to that number in the child. */
  moveFds?: readonly number[];
}

/**
 * The addon, or why not. `code` is set when the cause is a shortage that
 * passes (EMFILE, ENFILE, ENOMEM): such a failure is not remembered, the
 * next call tries again.
 */
export type NativeLoad = { readonly addon: NativeAddon } | { readonly reason: string; readonly code?: string };

const SHORTAGES = new Set(['EMFILE', 'ENFILE', 'ENOMEM']);

/**
 * dlopen() reports no errno, only text. Whether the file itself can be
 * opened right now tells a shortage of descriptors or memory (it cannot)
 * from a library that will never load here (it can).
 */
function shortage(path: string): string | undefined {
  try {
    closeSync(openSync(path, 'r'));
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && SHORTAGES.has(code) ? code : undefined;
  }
}

let loaded: NativeLoad | undefined;

/**
 * Loads the addon once per thread (again after a shortage). Both bundles (dist/index.js and
 * dist/worker.js) sit beside dist/native/, where scripts/build-native.mjs
 * puts it; the main thread loads it only to decide which engine to use.
 */
export function loadNativeAddon(): NativeLoad {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { reason: `it needs Linux, this is ${process.platform}` });
  const path = fileURLToPath(new URL('./native/spawnpool_native.node', import.meta.url));
  try {
    loaded = { addon: createRequire(import.meta.url)(path) as NativeAddon };
  } catch (err) {
    const reason = `cannot load ${path}: ${(err as Error).message.split('\n')[0]}`;
    const code = shortage(path);
    if (code !== undefined) return { reason, code };
    loaded = { reason };
  }
  return loaded;
}

/**
 * The exec helper (src/worker/native/exec-helper.c), built beside the addon:
 * its path, or why it cannot be used.
 */
export function execHelper(): { readonly path: string } | { readonly reason: string } {
  const path = fileURLToPath(new URL('./native/spawnpool-exec-helper', import.meta.url));
  try {
    accessSync(path, constants.X_OK);
    return { path };
  } catch (err) {
    return { reason: `the exec helper ${path} is not available (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
}
