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
  readonly rawStatus: boolean;
  readonly maxBuffer: number;
  readonly nonblockingFds: boolean;
  /** 'group': its own process group; 'session': setsid. Either way, kills reach the whole group. */
  readonly session: SessionMode;
}

export type SessionMode = 'inherit' | 'group' | 'session';

export const DEFAULT_MAX_BUFFER = 128 * 1024 * 1024;

/** How much of an uncaptured stderr is kept for the error message. */
export const STDERR_TAIL_BYTES = 4096;
