/** What every worker of a pool is started with. */
export interface WorkerConfig {
  readonly engine: 'native' | 'node';
}
