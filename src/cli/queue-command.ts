import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Command } from '../main/index.js';
import { AllowList } from '../distributed/allow.js';
import { checkBatchName } from '../distributed/names.js';
import { parseQueueUrl, type QueueConnection } from '../distributed/queue-url.js';
import { loadKey } from '../distributed/signing.js';
import type { RunAs } from '../distributed/worker.js';
import type { BatchOptions } from './batch.js';
import { parseDuration } from './duration.js';
import { runQueued } from './queue-batch.js';
import { count } from './run-command.js';
import { UsageError } from './usage.js';

const DEFAULT_WINDOW = 100_000;
const DEFAULT_MAX_OUTPUT = 64 * 1024;
const SEEN_MS = 15_000;

/** `--batch`, or the input file's name and a hash of its absolute path: the same batch on every --resume. */
function batchName(given: string | undefined, input: string | undefined): string {
  if (given !== undefined) return checkBatchName(given);
  if (input === undefined || input === '-') throw new UsageError('--batch NAME is needed when the jobs do not come from a file');
  const path = resolve(input);
  const stem = basename(path).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 80) || 'batch';
  return `${stem}-${createHash('sha256').update(path).digest('hex').slice(0, 8)}`;
}

interface RunValues {
  readonly queue?: string | undefined;
  readonly batch?: string | undefined;
  readonly 'key-file'?: string | undefined;
  readonly window?: string | undefined;
  readonly 'max-output'?: string | undefined;
  readonly 'dry-run'?: boolean | undefined;
  /** The JSONL input's path; undefined for a template. */
  readonly input: string | undefined;
}

/** `spawnpool run --queue` and `spawnpool submit`. */
export function queuedRun(o: BatchOptions, v: RunValues, mode: 'run' | 'submit'): Promise<number> {
  return queueMain(() => startQueued(o, v, mode), mode);
}

async function startQueued(o: BatchOptions, v: RunValues, mode: 'run' | 'submit'): Promise<number> {
  if (o.dryRun) throw new UsageError('--dry-run runs nothing: leave out --queue');
  if (o.usesSlot) throw new UsageError('{%} is the slot of a job on one machine: it has no meaning with --queue');
  if (mode === 'run' && o.joblog === undefined) throw new UsageError('--queue needs --joblog: it is the batch\'s record of what finished');
  const queue = parseQueueUrl(v.queue);
  const batch = batchName(v.batch, v.input);
  return runQueued({ ...o, joblog: o.joblog }, {
    queue, batch, key: loadKey(v['key-file']),
    window: mode === 'submit' ? Number.POSITIVE_INFINITY : count('--window', v.window, DEFAULT_WINDOW),
    maxOutput: count('--max-output', v['max-output'], DEFAULT_MAX_OUTPUT, 0),
    submitOnly: mode === 'submit',
  });
}

/** `--as-user NAME`: its uid and gid, as the system's user database has them (getent: NSS users too). */
async function userIds(name: string): Promise<RunAs> {
  const r = await new Command('getent', 'passwd', name).captureOutput().run().catch(() => undefined);
  const fields = r?.stdout.split('\n', 1)[0]!.split(':');
  if (fields === undefined || fields.length < 4) throw new UsageError(`--as-user ${name}: no such user`);
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

function queueAndBatch(values: { queue?: string | undefined; batch?: string | undefined }): { queue: QueueConnection; batch: string } {
  if (values.batch === undefined) throw new UsageError('--batch NAME is needed');
  return { queue: parseQueueUrl(values.queue), batch: checkBatchName(values.batch) };
}

/** `spawnpool worker`: exit 130 once stopped by a signal, 0 never (it runs until told to stop). */
export async function workerCommand(args: string[], stderr: NodeJS.WriteStream): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      queue: { type: 'string' }, batch: { type: 'string' }, jobs: { type: 'string', short: 'j' },
      lease: { type: 'string' }, grace: { type: 'string' }, name: { type: 'string' },
      'key-file': { type: 'string' }, allow: { type: 'string', multiple: true }, 'allow-file': { type: 'string', multiple: true },
      'as-user': { type: 'string' }, 'max-lost': { type: 'string' }, engine: { type: 'string' },
    },
  });
  if (values.engine !== undefined && values.engine !== 'native') {
    throw new UsageError('spawnpool worker runs its jobs on the native engine: a job must die with its worker (PR_SET_PDEATHSIG), which the node engine cannot promise');
  }
  const queue = parseQueueUrl(values.queue);
  const batch = values.batch === undefined ? undefined : checkBatchName(values.batch);
  const allowPaths = values.allow ?? [];
  const allowFiles = values['allow-file'] ?? [];
  const allow = allowPaths.length + allowFiles.length > 0 ? AllowList.from(allowPaths, allowFiles) : undefined;
  const runAs = values['as-user'] === undefined ? undefined : await userIds(values['as-user']);
  const say = (line: string) => stderr.write(`spawnpool worker: ${line}\n`);
  if (process.getuid?.() === 0 && runAs === undefined && allow === undefined) {
    say('WARNING: running as root with neither --as-user nor --allow: anyone who can write to this queue can run anything as root here');
  }
  const key = loadKey(values['key-file']);
  const graceMs = values.grace === undefined ? 10_000 : parseDuration('--grace', values.grace);
  const { DistributedWorker } = await import('../distributed/worker.js');
  const jobs = count('-j', values.jobs, 1);
  const common = {
    queue, jobs, key, allow, runAs,
    ...(values.lease === undefined ? {} : { leaseMs: parseDuration('--lease', values.lease) }),
    ...(values['max-lost'] === undefined ? {} : { maxLost: count('--max-lost', values['max-lost'], 3) }),
    ...(values.name === undefined ? {} : { name: values.name }),
  };
  const name = values.name ?? `${hostname()}:${process.pid}`;
  let worker: { stop(o: { graceMs: number }): Promise<void>; abortRunning(): void; running: number | Promise<number> };
  if (batch !== undefined) worker = await DistributedWorker.start({ ...common, batch });
  else {
    const { AnyBatchWorker } = await import('../distributed/any-batch.js');
    worker = await AnyBatchWorker.start(common, (b, err) => say(`batch ${b}: ${err.message}`));
  }
  say(`${name}: running ${batch === undefined ? 'every batch' : `batch ${batch}`} from ${queue.shown}, ${jobs} at once${key === undefined ? '' : ', signed jobs only'}`);
  const stopped = await new Promise<string>((resolveStop) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals === 1) {
        void Promise.resolve(worker.running).then((n) => say(`${signal}: no new jobs; ${n} running get ${graceMs / 1000} s, then go back to the queue`));
        void worker.stop({ graceMs }).then(() => resolveStop(signal));
      } else {
        say(`${signal}: the running jobs go back to the queue now`);
        worker.abortRunning();
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  say(`${stopped}: stopped`);
  return 130;
}

/** Errors of the queue's own (unreachable, refused, a bad key or list): a message and exit 4, or 2 for what the command line gave. */
export async function queueMain(run: () => Promise<number>, what: string): Promise<number> {
  try {
    return await run();
  } catch (err) {
    const name = (err as Error).constructor?.name;
    if (name === 'QueueError' || name === 'SubmitError') {
      process.stderr.write(`spawnpool ${what}: ${(err as Error).message}\n`);
      return 4;
    }
    if (name === 'QueueUrlError' || name === 'KeyError' || name === 'AllowListError' || name === 'BatchNameError' || name === 'CommandError') {
      process.stderr.write(`spawnpool ${what}: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
}

/** `spawnpool status`: one batch, or every batch not yet finished. */
export async function statusCommand(args: string[], stdout: NodeJS.WriteStream): Promise<number> {
  const { values } = parseArgs({ args, options: { queue: { type: 'string' }, batch: { type: 'string' } } });
  const queue = parseQueueUrl(values.queue);
  const { batchStatus, listBatches } = await import('../distributed/status.js');
  const batches = values.batch === undefined ? await listBatches(queue) : [checkBatchName(values.batch)];
  if (batches.length === 0) stdout.write(`no batches on ${queue.shown}\n`);
  const now = Date.now();
  for (const batch of batches) {
    const s = await batchStatus(queue, batch);
    const lines = [
      `batch ${batch} on ${queue.shown}${s.paused ? ' (paused)' : ''}`,
      `  jobs: ${s.counts.waiting ?? 0} waiting, ${s.counts.active ?? 0} running, ${s.counts.delayed ?? 0} delayed, ${s.counts.failed ?? 0} failed; ${s.results} results not yet logged`,
      `  coordinator: ${s.coordinator ?? 'none'}`,
      `  workers seen: ${s.workers.filter((w) => now - w.seenAt < SEEN_MS).length}`,
      ...s.workers.map((w) => `    ${w.name}: ${w.running}/${w.jobs} running, seen ${((now - w.seenAt) / 1000).toFixed(1)} s ago${now - w.seenAt < SEEN_MS ? '' : ' (gone?)'}`),
      `  oldest running job: ${s.oldest === undefined ? 'none' : `${s.oldest.id}, for ${((now - s.oldest.since) / 1000).toFixed(1)} s`}`,
    ];
    stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}

/** `spawnpool cancel`. */
export async function cancelCommand(args: string[], stderr: NodeJS.WriteStream): Promise<number> {
  const { values } = parseArgs({ args, options: { queue: { type: 'string' }, batch: { type: 'string' } } });
  const { queue, batch } = queueAndBatch(values);
  const { cancelBatch } = await import('../distributed/status.js');
  const { aborted, removed } = await cancelBatch(queue, batch);
  stderr.write(`spawnpool cancel: batch ${batch}: paused; ${aborted} running jobs aborted, ${removed} waiting removed; the joblog keeps what finished\n`);
  return 0;
}
