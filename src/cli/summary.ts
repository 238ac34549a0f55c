/** Failed jobs listed in the summary; past this many, a count. */
const SHOWN = 10;

/** The failures of a batch for its summary, the first ten in input order: which job, its code and why. */
export class Failures {
  readonly #shown: { readonly index: number; readonly line: string }[] = [];
  #more = 0;

  /** `index`: the job's place in the input, so that the list reads in input order whatever order jobs end in. */
  add(index: number, what: string, code: string, reason: string): void {
    // The first line of the reason: a captured stderr tail can follow it.
    const first = reason.split('\n', 1)[0]!;
    this.#shown.push({ index, line: `${what}: ${code}${first === '' ? '' : `: ${first}`}` });
    if (this.#shown.length <= SHOWN) return;
    this.#shown.sort((a, b) => a.index - b.index);
    this.#shown.pop();
    this.#more++;
  }

  lines(): string[] {
    const shown = [...this.#shown].sort((a, b) => a.index - b.index).map((f) => f.line);
    return this.#more === 0 ? shown : [...shown, `... and ${this.#more} more failed`];
  }
}
