// Backend by name. Native and WebGPU backends are imported lazily: the reference backend must work
// on a machine where neither the addon nor a GPU adapter exists.

import type { Backend } from '../kernels/backend.ts';
import { ReferenceBackend } from '../kernels/reference/backend.ts';

import { BACKENDS } from './options.ts';

export type BackendName = (typeof BACKENDS)[number];
export const BACKEND_NAMES: readonly BackendName[] = BACKENDS;

export class BackendUnavailableError extends Error {}

export async function makeBackend(name: BackendName): Promise<Backend> {
  switch (name) {
    case 'reference':
      return new ReferenceBackend();
    case 'cpu': {
      const mod = await import('../kernels/cpu/backend.ts');
      if (!mod.cpuBackendAvailable()) throw new BackendUnavailableError(`the native CPU backend is not built: ${mod.cpuBackendLoadError?.() ?? 'unknown reason'} (run npm install)`);
      return new mod.CpuBackend();
    }
    case 'webgpu': {
      const mod = await import('../kernels/webgpu/backend.ts');
      const b = await mod.WebGpuBackend.create();
      if (!b) throw new BackendUnavailableError(`no WebGPU adapter: ${mod.webgpuUnavailableReason?.() ?? 'unknown reason'}`);
      return b;
    }
    default:
      throw new BackendUnavailableError(`unknown backend '${String(name)}' (choose ${BACKEND_NAMES.join(', ')})`);
  }
}
