import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

export interface ResolveFailure {
  readonly code: 'ENOENT' | 'EACCES';
  readonly message: string;
}

// glibc's execvp default when PATH is unset.
const DEFAULT_PATH = '/bin:/usr/bin';

function isExecutableFile(path: string): 'yes' | 'missing' | 'denied' {
  try {
    if (!statSync(path).isFile()) return 'denied';
    accessSync(path, constants.X_OK);
    return 'yes';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES' ? 'denied' : 'missing';
  }
}

/**
 * Finds the program a command names, as execvp would: a name with a slash is
 * used as is (made absolute against `cwd`); a bare name is searched on
 * `searchPath`, the *parent's* PATH, whatever the child's environment holds.
 * A candidate that exists but cannot be executed is skipped, and reported as
 * EACCES only when nothing better was found.
 */
export function resolveBinary(binary: string, searchPath: string | undefined, cwd: string): string | ResolveFailure {
  if (binary.includes('/')) return isAbsolute(binary) ? binary : resolve(cwd, binary);
  let denied: string | undefined;
  for (const dir of (searchPath ?? DEFAULT_PATH).split(':')) {
    const candidate = join(dir === '' ? cwd : resolve(cwd, dir), binary);
    const state = isExecutableFile(candidate);
    if (state === 'yes') return candidate;
    if (state === 'denied') denied ??= candidate;
  }
  if (denied) return { code: 'EACCES', message: `cannot execute ${denied}: permission denied` };
  return { code: 'ENOENT', message: `cannot find '${binary}' in PATH ${searchPath ?? DEFAULT_PATH}` };
}
