import { loadNativeAddon } from '../shared/native-addon.js';

/**
 * A zeroed buffer for a large capture, backed by huge pages where the kernel
 * allows (THP "madvise" mode): the first touch of each 4 KiB page is a page
 * fault, and under a hypervisor those dominate the cost of keeping output.
 * V8 takes big ArrayBuffers from mmap'd zero pages, so what is never written
 * is never resident.
 */
export function bigBuffer(bytes: number): Uint8Array {
  const buffer = new ArrayBuffer(bytes);
  const native = loadNativeAddon();
  if ('addon' in native) native.addon.adviseHugePages(buffer);
  return new Uint8Array(buffer);
}
