/**
 * The error codes spawnpool reports. An errno name (e.g. `EPERM`) may also
 * appear when a step before exec fails with it.
 */
export type KnownErrorCode =
  | 'EINVAL'       // bad builder input or conflicting settings
  | 'ENOENT'       // binary not found
  | 'EACCES'       // binary not executable
  | 'ENOEXEC'      // binary of an unknown format
  | 'ENOCWD'       // working directory missing
  | 'EEXIT'        // exited with a non-zero status
  | 'ESIGNAL'      // killed by a signal
  | 'ETIMEDOUT'    // timeoutMs elapsed
  | 'EABORTED'     // abort() or the AbortSignal
  | 'EMAXBUFFER'   // a captured stream went past maxBuffer
  | 'EPOOLCLOSED'  // the pool is closed or destroyed
  | 'EQUEUEFULL'   // the pool's queue is full
  | 'EWORKER'      // the worker thread carrying the run died; its child was killed
  | 'ENOTSUP'      // the active engine cannot provide a feature
  | 'ESPAWN'       // any other failure to start the child
  // A queued batch's results (spawnpool/distributed, spawnpool run --queue):
  | 'EBADSIG'      // the job's signature does not verify (or it has none, for a worker with a key): not run
  | 'EPERM'        // the job's program is not on the worker's --allow list: not run
  | 'ELOST'        // the job's worker died or lost Redis while it ran, --max-lost times: not started again
  | 'EQUEUE';      // the queue failed the job itself (see the message)

// `string & {}` keeps editor completion for the known codes.
export type ErrorCode = KnownErrorCode | (string & {});
