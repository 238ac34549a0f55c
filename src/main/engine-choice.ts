import { CommandError } from '../shared/errors.js';
import { loadNativeAddon } from '../shared/native-addon.js';

export type EngineName = 'native' | 'node';

let warned = false;

/**
 * The engine a new pool runs on. Native unless it cannot load, then the
 * child_process engine with one warning per process; asked for by name,
 * an engine that cannot run is an error, never a silent substitute.
 */
export function chooseEngine(requested: unknown): EngineName {
  if (requested !== undefined && requested !== 'native' && requested !== 'node') {
    throw new CommandError('EINVAL', `SpawnPool: engine must be 'native' or 'node', got ${String(requested)}`, { command: '' });
  }
  if (requested === 'node') return 'node';
  const native = loadNativeAddon();
  // Out of descriptors or memory for now: the addon is there, and the runs
  // will say what is short; never a fall back for good.
  if ('addon' in native || native.code !== undefined) return 'native';
  if (requested === 'native') {
    throw new CommandError('ENOTSUP', `SpawnPool: the native engine is not available: ${native.reason}`, { command: '' });
  }
  if (!warned) {
    warned = true;
    process.emitWarning(`native engine not available (${native.reason}); using the child_process engine, whose spawn cost grows with this process's memory`,
      { code: 'SPAWNPOOL_NO_NATIVE' });
  }
  return 'node';
}
