/**
 * spawnpool: run external commands the way libvirt's virCommand does, on a
 * pool of worker threads so the caller's event loop never stalls.
 */
export { Command, type ArgValue, type CaptureOptions, type PassFdOptions } from './command.js';
export { SpawnPool, type SpawnPoolOptions, type PoolStats } from './pool.js';
export type { LatencySummary, OutcomeCounts } from './pool-metrics.js';
export { RunningCommand, type WaitOptions } from './running.js';
export type { RunOptions } from './options.js';
export type { RunResult } from './result.js';
export {
  withDryRun, type DryRunHandler, type DryRunReply, type DryRunReport, type DryRunRequest,
} from './dry-run.js';
export { CommandError, type CommandErrorDetails } from '../shared/errors.js';
export type { ErrorCode, KnownErrorCode } from '../shared/codes.js';
export type { CommandLineOptions } from '../shared/quote.js';
export type { OutputEncoding } from '../shared/spec.js';
export { exitedNormally, exitStatus, termSignal, coreDumped } from '../shared/status.js';
