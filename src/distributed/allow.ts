import { readFileSync, realpathSync } from 'node:fs';
import { resolveBinary } from '../shared/resolve.js';

/**
 * A worker's `--allow PATH` (repeatable) and `--allow-file F` (one path a
 * line, `#` comments): the only programs it will exec. A job's program is
 * found as the worker would run it (PATH, its cwd), then both sides are
 * compared by real path, so that neither a symlink nor `..` nor a PATH
 * entry of the job's choosing gets another binary past the list.
 */

export type AllowVerdict =
  | { readonly ok: true; readonly file: string }
  | { readonly ok: false; readonly code: 'EPERM' | 'ENOENT' | 'EACCES'; readonly message: string };

export class AllowListError extends Error {
  readonly code = 'EINVAL';
}

export class AllowList {
  readonly #real: ReadonlySet<string>;

  private constructor(real: ReadonlySet<string>, readonly entries: readonly string[]) {
    this.#real = real;
  }

  /** Each entry must name an existing program by absolute path: a typo would otherwise refuse every job. */
  static from(paths: readonly string[], files: readonly string[] = []): AllowList {
    const entries = [...paths];
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new AllowListError(`cannot read the allow file ${file}: ${(err as Error).message}`);
      }
      for (const line of text.split('\n')) {
        const entry = line.replace(/#.*/, '').trim();
        if (entry !== '') entries.push(entry);
      }
    }
    const real = new Set<string>();
    for (const entry of entries) {
      if (!entry.startsWith('/')) throw new AllowListError(`--allow ${entry}: give the program's absolute path`);
      try {
        real.add(realpathSync(entry));
      } catch (err) {
        throw new AllowListError(`--allow ${entry}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    return new AllowList(real, entries);
  }

  /** Whether the job's program may run; `searchPath` and `cwd` are the worker's, as for the run itself. */
  check(program: string, searchPath: string | undefined, cwd: string): AllowVerdict {
    const file = resolveBinary(program, searchPath, cwd);
    if (typeof file !== 'string') return { ok: false, code: file.code, message: file.message };
    let real: string;
    try {
      real = realpathSync(file);
    } catch (err) {
      return { ok: false, code: 'ENOENT', message: `cannot find ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    if (this.#real.has(real)) return { ok: true, file };
    const shown = real === file ? file : `${file} (${real})`;
    return { ok: false, code: 'EPERM', message: `${shown} is not among the programs this worker may run (--allow)` };
  }
}
