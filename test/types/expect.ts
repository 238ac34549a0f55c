// The published types, as a user's program sees them (through the package's
// own name and its "exports"): result fields typed by the captures asked
// for, nothing internal visible. Checked by tsc in npm test (types.test.js);
// a line marked @ts-expect-error that compiles fails the check.
import { Command, CommandError, SpawnPool, type RunResult, type RunningCommand } from 'spawnpool';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function expectType<T extends true>(): T | void {}

async function captures(): Promise<void> {
  const plain = await new Command('/bin/true').run();
  expectType<Equal<typeof plain.stdout, undefined>>();
  expectType<Equal<typeof plain.stderr, undefined>>();

  const text = await new Command('/bin/echo', 'x').captureOutput().run();
  expectType<Equal<typeof text.stdout, string>>();
  expectType<Equal<typeof text.stderr, undefined>>();

  const bytes = await new Command('/bin/echo').captureOutput({ encoding: 'buffer' }).captureError().run();
  expectType<Equal<typeof bytes.stdout, Uint8Array>>();
  expectType<Equal<typeof bytes.stderr, string>>();

  const latin1 = await new Command('/bin/echo').captureError({ encoding: 'latin1' }).run();
  expectType<Equal<typeof latin1.stderr, string>>();

  const combined = await new Command('/bin/sh').arg('-c').captureCombined({ encoding: 'buffer' }).run();
  expectType<Equal<typeof combined.output, Uint8Array>>();

  // The builder's other steps keep what the captures said.
  const chained = await new Command('/bin/cat').captureOutput({ encoding: 'buffer' }).inputBuffer('x').cwd('/').envClear().run();
  expectType<Equal<typeof chained.stdout, Uint8Array>>();

  const running = await new Command('/bin/cat').captureOutput().runAsync();
  expectType<Equal<typeof running, RunningCommand<string, undefined, undefined>>>();
  const waited = await running.wait();
  expectType<Equal<typeof waited.stdout, string>>();

  // A result whose command's type is not known holds any capture.
  const any: RunResult = text;
  expectType<Equal<typeof any.stdout, string | Uint8Array | undefined>>();

  // @ts-expect-error: not captured, so not a string
  const notText: string = plain.stdout;
  void notText;
  // @ts-expect-error: captured as bytes, so not a string
  const notString: string = bytes.stdout;
  void notString;
  // @ts-expect-error: no such encoding
  new Command('/bin/true').captureOutput({ encoding: 'ebcdic' });
}

function nothingInternal(): void {
  expectType<Equal<Extract<keyof Command, symbol>, never>>();
  expectType<Equal<Extract<keyof SpawnPool, symbol>, never>>();
  // @ts-expect-error: the pool's submission path is not public
  void SpawnPool.prototype.submit;
  const err = new CommandError('EEXIT', 'x', { command: 'x' });
  expectType<Equal<typeof err.durationMs, number | undefined>>();
}

void captures;
void nothingInternal;
