import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { BroadcastChannel } from 'node:worker_threads';
import type { RunOutcome, RunTask } from '../shared/protocol.js';
import { DESTROY_MESSAGE, type WorkerConfig } from '../shared/pool-config.js';
import type { Engine } from './engine.js';
import { nativeEngine } from './engines/native.js';
import { nodeEngine } from './engines/node.js';
import { endAll, killAllNow, runChild } from './run-child.js';

/**
 * The pool's worker: runs many children at once, each task one run. The
 * outcome's byte buffers are transferred to the main thread, not copied.
 */

const config = workerData as WorkerConfig;
// The main thread has chosen, and checked that the addon loads.
const engine: Engine = config.engine === 'native' ? nativeEngine : nodeEngine;

const poolChannel = new BroadcastChannel(config.channel);
poolChannel.onmessage = (event) => {
  if ((event as MessageEvent).data === DESTROY_MESSAGE) endAll();
};
// The channel must not keep an otherwise idle worker alive.
poolChannel.unref();
process.on('exit', killAllNow);

function transferable(outcome: RunOutcome): unknown {
  const buffers = [outcome.stdout, outcome.stderr, outcome.output, outcome.stderrTail]
    .filter((b): b is Uint8Array => b !== undefined && b.byteLength > 0)
    .map((b) => b.buffer);
  return move({ [transferableSymbol]: buffers, [valueSymbol]: outcome } as never);
}

export default async function runTask(task: RunTask): Promise<unknown> {
  return transferable(await runChild(task, engine));
}
