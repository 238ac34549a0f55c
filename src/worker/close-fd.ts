import { closeSync } from 'node:fs';
import { loadNativeAddon } from '../shared/native-addon.js';

/**
 * Closes an fd the host opened on the main thread. Node's fs.closeSync from a
 * worker warns about fds that thread did not open; a plain close(2) through
 * the addon does not, so the addon is used whenever it loads.
 */
export function closeHostFd(fd: number): void {
  const native = loadNativeAddon();
  try {
    if ('addon' in native) native.addon.closeFd(fd);
    else closeSync(fd);
  } catch {
    // Already closed by the caller: nothing of ours leaks.
  }
}
