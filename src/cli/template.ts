import { UsageError } from './usage.js';

/**
 * GNU parallel's replacement strings. `{}` is every argument of the job
 * (joined by a space when there are several sources), `{N}` the Nth
 * source's; `.` drops the extension, `/` keeps the basename, `//` the
 * directory, `/.` the basename without extension; `{#}` is the job number
 * (from 1), `{%}` the slot running it (from 1).
 */
const REPLACEMENT = /\{(\d*)(\/\/|\/\.|\/|\.)?\}|\{#\}|\{%\}/g;

type Modifier = '' | '.' | '/' | '//' | '/.';

const noExtension = (s: string) => s.replace(/\.[^/.]+$/, '');
const basename = (s: string) => s.replace(/^.*\/([^/]+)$/, '$1');
const dirname = (s: string) => (s.includes('/') ? s.replace(/\/[^/]*$/, '') : '.');

function modify(value: string, mod: Modifier): string {
  switch (mod) {
    case '': return value;
    case '.': return noExtension(value);
    case '/': return basename(value);
    case '//': return dirname(value);
    case '/.': return noExtension(basename(value));
  }
}

/** A command template: the words after `--`, each one argv element after replacement. */
export class Template {
  readonly #words: readonly string[];
  /** No replacement string anywhere: the job's arguments are appended. */
  readonly #appends: boolean;
  /** `{%}` somewhere: the argv depends on the slot. */
  readonly usesSlot: boolean;

  constructor(words: readonly string[], sources: number) {
    if (words.length === 0) throw new UsageError('a command is needed after --');
    let any = false;
    let slot = false;
    for (const word of words) {
      for (const m of word.matchAll(REPLACEMENT)) {
        any = true;
        if (m[0] === '{%}') slot = true;
        const n = m[1] === undefined || m[1] === '' ? undefined : Number(m[1]);
        if (n !== undefined && (n < 1 || n > sources)) {
          throw new UsageError(`${m[0]} in "${word}": there ${sources === 1 ? 'is 1 input source' : `are ${sources} input sources`}`);
        }
      }
    }
    this.#words = words;
    this.#appends = !any;
    this.usesSlot = slot;
  }

  /** The argv of job number `seq` (from 1) with `args` (one per source), run in `slot`. */
  argv(args: readonly string[], seq: number, slot: number): string[] {
    if (this.#appends) return [...this.#words, ...args];
    return this.#words.map((word) => word.replace(REPLACEMENT, (whole, n: string | undefined, mod: Modifier | undefined) => {
      if (whole === '{#}') return String(seq);
      if (whole === '{%}') return String(slot);
      const value = n === undefined || n === '' ? args.join(' ') : args[Number(n) - 1]!;
      return modify(value, mod ?? '');
    }));
  }
}
