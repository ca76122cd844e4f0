// How many KV pages --kv-cache-mb buys, checked against what the backend can bind. The paged cache is
// one K and one V tensor per layer, each [entries, width]; a kernel binds each tensor whole, so on
// WebGPU each must fit the adapter's maxStorageBufferBindingSize (128 MiB on lavapipe). A cache that
// does not fit is refused at start, naming --kv-cache-mb and the largest value that fits, instead of
// failing the first request and killing the engine. (Splitting the tensors over several bindings
// would let a device use more memory, at the price of a second indexing path in every attention
// kernel; refusing keeps one path and still tells the user exactly what to ask for.)
import type { ModelSpec } from '../config/spec.ts';

export interface KvLayout {
  /** Bytes of one entry across the whole cache (all layers, K and V). */
  bytesPerEntry: number;
  /** Equal tensors the cache is made of: 2 x layers. */
  tensors: number;
  /** Entries per page. */
  pageSize: number;
}

/** The paged cache of a model spec: f32 K and V per layer of the stack that owns the paged entries. */
export function kvLayoutOf(spec: ModelSpec, pageSize: number): KvLayout {
  const stack = spec.kind === 'block' ? spec.blockDecoder : spec.decoder;
  return { bytesPerEntry: stack.numLayers * 2 * stack.hiddenSize * 4, tensors: 2 * stack.numLayers, pageSize };
}

/** Pages of the cache for `kvCacheMb`, or throws a message naming the flag and the limit. */
export function kvPagesFor(kvCacheMb: number, layout: KvLayout, maxTensorBytes?: number, backendName = 'this backend'): number {
  const pageBytes = layout.bytesPerEntry * layout.pageSize;
  const numPages = Math.floor((kvCacheMb * 2 ** 20) / pageBytes);
  if (numPages < 1)
    throw new Error(
      `--kv-cache-mb ${kvCacheMb} is too small: one page of ${layout.pageSize} entries takes ${(pageBytes / 2 ** 20).toFixed(2)} MB`,
    );
  if (maxTensorBytes === undefined) return numPages;
  const tensorBytes = (numPages * pageBytes) / layout.tensors;
  if (tensorBytes <= maxTensorBytes) return numPages;
  const maxPages = Math.floor((maxTensorBytes * layout.tensors) / pageBytes);
  const maxMb = Math.floor((maxPages * pageBytes) / 2 ** 20);
  throw new Error(
    `--kv-cache-mb ${kvCacheMb} does not fit the ${backendName} device: the cache is ${layout.tensors} tensors (K and V per layer) of ` +
      `${tensorBytes} bytes each, over the device's ${maxTensorBytes}-byte storage binding limit (maxStorageBufferBindingSize). ` +
      (maxMb >= 1 ? `Use --kv-cache-mb ${maxMb} or less.` : `Even one page does not fit; this model cannot run on this device.`),
  );
}
