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
  | 'ESPAWN';      // any other failure to start the child

// `string & {}` keeps editor completion for the known codes.
export type ErrorCode = KnownErrorCode | (string & {});
