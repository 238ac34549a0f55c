/** Failed jobs listed in the summary; past this many, a count. */
const SHOWN = 10;

/** The first failures of a batch, for the summary: which job, its code and why. */
export class Failures {
  readonly #shown: string[] = [];
  #more = 0;

  add(what: string, code: string, reason: string): void {
    if (this.#shown.length >= SHOWN) {
      this.#more++;
      return;
    }
    // The first line of the reason: a captured stderr tail can follow it.
    const first = reason.split('\n', 1)[0]!;
    this.#shown.push(`${what}: ${code}${first === '' ? '' : `: ${first}`}`);
  }

  lines(): string[] {
    return this.#more === 0 ? [...this.#shown] : [...this.#shown, `... and ${this.#more} more failed`];
  }
}
