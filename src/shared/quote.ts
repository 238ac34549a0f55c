/**
 * POSIX shell quoting for log lines, following virBufferEscapeShell: a word
 * is single-quoted only when it is empty or holds a character the shell
 * treats specially; a quote inside becomes '\''.
 */
const SHELL_SPECIAL = /[\r\t\n !"#$&'()*;<>?[\\\]^`{|}~]/;

export function shellQuote(word: string): string {
  if (word === '') return "''";
  if (!SHELL_SPECIAL.test(word)) return word;
  return `'${word.replaceAll("'", "'\\''")}'`;
}

export interface CommandLineOptions {
  /** One line per env setting; an option and its value share a line. */
  linebreaks?: boolean;
  /** Print only the last path component of the binary. */
  stripPath?: boolean;
}

/**
 * Renders env settings then argv, as virCommandToStringFull does. With
 * linebreaks, every env setting ends a line, and an argument starts a new
 * line when it is an option (starts with '-') or when the previous argument
 * was not an option: so `--name value` stays together.
 */
export function commandLine(
  env: ReadonlyArray<readonly [string, string]> | null,
  argv: readonly string[],
  opts: CommandLineOptions = {},
): string {
  const brk = opts.linebreaks ? '\\\n' : '';
  let out = '';
  for (const [name, value] of env ?? []) out += `${name}=${shellQuote(value)} ${brk}`;
  const [binary = '', ...args] = argv;
  const shown = opts.stripPath ? binary.slice(binary.lastIndexOf('/') + 1) : binary;
  out += shellQuote(shown);
  let prevOption = false;
  for (const arg of args) {
    const isOption = arg.startsWith('-');
    out += ' ';
    if (opts.linebreaks && (isOption || !prevOption)) out += brk;
    out += shellQuote(arg);
    prevOption = isOption;
  }
  return out;
}
