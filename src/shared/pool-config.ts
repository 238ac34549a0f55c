/** What every worker of a pool is started with. */
export interface WorkerConfig {
  readonly engine: 'native' | 'node';
  /** BroadcastChannel name on which the pool tells its workers to kill everything. */
  readonly channel: string;
}

export const DESTROY_MESSAGE = 'destroy';
