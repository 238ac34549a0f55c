import { SpawnPool } from './pool.js';

let shared: SpawnPool | undefined;

/** The pool run() uses when none is given, made on first use. */
export function defaultPool(): SpawnPool {
  return (shared ??= new SpawnPool());
}
