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
 * Renders env settings then argv, as virCommandToStringFull does (its
 * rule since 2021, libvirt's test26). With linebreaks, every env setting
 * ends a line and every option (an argument starting with '-') starts one;
 * an argument that is not an option stays on the line before it when the
 * argument before it is an option (`--name value`), or when an option came
 * before and another comes after (`--multi a b \`); trailing positionals
 * get a line each.
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
  const isOption = (arg: string) => arg.startsWith('-');
  // Where the last option is: a positional before it continues its line.
  let lastOption = -1;
  for (let i = args.length - 1; i >= 0 && lastOption < 0; i--) if (isOption(args[i]!)) lastOption = i;
  let seenOption = false;
  for (const [i, arg] of args.entries()) {
    out += ' ';
    const sameLine = !isOption(arg) && i > 0 && (isOption(args[i - 1]!) || (seenOption && i < lastOption));
    if (opts.linebreaks && !sameLine) out += brk;
    out += shellQuote(arg);
    seenOption ||= isOption(arg);
  }
  return out;
}
