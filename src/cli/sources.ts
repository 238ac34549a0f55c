import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { readLines } from '../main/lines.js';

/** Where a template's arguments come from: `::: A B`, `:::: FILE`, `-a FILE`, or stdin. */
export type Source =
  | { readonly kind: 'list'; readonly values: readonly string[]; readonly linked: boolean }
  | { readonly kind: 'file'; readonly path: string; readonly linked: boolean };

/** The stdin stream, replaceable in tests. */
export interface SourceIo {
  readonly stdin: Readable;
}

async function* lines(source: Source, io: SourceIo): AsyncGenerator<string> {
  if (source.kind === 'list') return yield* source.values;
  const input = source.path === '-' ? io.stdin : createReadStream(source.path);
  for await (const { text } of readLines(input)) yield text;
}

async function all(source: Source, io: SourceIo): Promise<string[]> {
  const values: string[] = [];
  for await (const v of lines(source, io)) values.push(v);
  return values;
}

/** Linked sources (`:::+`, `--link`) go together, shorter ones recycled; groups combine as a product. */
function groups(sources: readonly Source[], linkAll: boolean): Source[][] {
  const out: Source[][] = [];
  for (const s of sources) {
    if (out.length > 0 && (linkAll || s.linked)) out[out.length - 1]!.push(s);
    else out.push([s]);
  }
  return out;
}

function zip(columns: readonly (readonly string[])[]): string[][] {
  const n = Math.max(0, ...columns.map((c) => c.length));
  if (columns.some((c) => c.length === 0)) return [];
  return Array.from({ length: n }, (_, i) => columns.map((c) => c[i % c.length]!));
}

/**
 * Every job's arguments, one per source, in GNU parallel's order: the
 * product of the groups, the first outermost. The first group, when it is
 * one file or stdin, is streamed (a file of millions of lines is never held);
 * the others are read first.
 */
export async function* argumentSets(sources: readonly Source[], linkAll: boolean, io: SourceIo): AsyncGenerator<string[]> {
  const [first, ...rest] = groups(sources, linkAll);
  if (first === undefined) return;
  const inner: string[][][] = [];
  for (const g of rest) inner.push(zip(await Promise.all(g.map((s) => all(s, io)))));
  const tails = product(inner);
  if (first.length === 1) {
    for await (const v of lines(first[0]!, io)) for (const tail of tails) yield [v, ...tail];
  } else {
    for (const head of zip(await Promise.all(first.map((s) => all(s, io))))) for (const tail of tails) yield [...head, ...tail];
  }
}

function product(sets: readonly string[][][]): string[][] {
  let out: string[][] = [[]];
  for (const set of sets) out = out.flatMap((prefix) => set.map((row) => [...prefix, ...row]));
  return out;
}

/** Counts the lines of a regular file without holding it; `keep` picks the lines that count. */
export async function countLines(path: string, keep: (line: string) => boolean = () => true): Promise<number> {
  let n = 0;
  for await (const { text } of readLines(createReadStream(path))) if (keep(text)) n++;
  return n;
}

/** A regular file (its lines can be counted ahead); false for a pipe, a device or nothing there. */
export const isRegularFile = (path: string): boolean => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** How many jobs the sources make, when that can be known without reading stdin or a pipe. */
export async function countArgumentSets(sources: readonly Source[], linkAll: boolean): Promise<number | undefined> {
  let total = 1;
  for (const g of groups(sources, linkAll)) {
    const sizes: number[] = [];
    for (const s of g) {
      if (s.kind === 'list') sizes.push(s.values.length);
      else if (s.path !== '-' && isRegularFile(s.path)) sizes.push(await countLines(s.path));
      else return undefined;
    }
    total *= sizes.includes(0) ? 0 : Math.max(...sizes);
  }
  return total;
}
