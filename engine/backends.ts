// Backend by name. Native and WebGPU backends are imported lazily: the reference backend must work
// on a machine where neither the addon nor a GPU adapter exists.

import type { Backend } from '../kernels/backend.ts';
import { ReferenceBackend } from '../kernels/reference/backend.ts';

import { BACKENDS, COMPUTE_DTYPES, CPU_ISA_CHOICES, KV_DTYPES } from './options.ts';

export type BackendName = (typeof BACKENDS)[number];
export const BACKEND_NAMES: readonly BackendName[] = BACKENDS;

export class BackendUnavailableError extends Error {}

/** --compute-dtype: what the CPU backend's GEMMs multiply in (auto: bf16 where the CPU has AVX512_BF16). */
export type ComputeDtypeOption = (typeof COMPUTE_DTYPES)[number];
/** --kv-dtype: KV cache entries (bf16 halves what decode attention streams; CPU backend only). */
export type KvDtypeOption = (typeof KV_DTYPES)[number];
/** --cpu-isa: the best the CPU runs, or a cap (measuring the AVX2 path on an AVX-512 machine). */
export type CpuIsaOption = (typeof CPU_ISA_CHOICES)[number];
export { COMPUTE_DTYPES, CPU_ISA_CHOICES, KV_DTYPES };

export interface BackendOptions {
  computeDtype?: ComputeDtypeOption;
  kvDtype?: KvDtypeOption;
  cpuIsa?: CpuIsaOption;
}

/** Why `opts` cannot go with backend `name` (the CPU-only options on another backend), or undefined. */
export function cpuOnlyOptionsError(name: BackendName, opts: BackendOptions): string | undefined {
  if (name === 'cpu') return undefined;
  if (opts.computeDtype === 'bf16' || opts.kvDtype === 'bf16')
    return `--compute-dtype bf16 and --kv-dtype bf16 need the cpu backend (got '${name}')`;
  if (opts.cpuIsa !== undefined && opts.cpuIsa !== 'auto') return `--cpu-isa ${opts.cpuIsa} needs the cpu backend (got '${name}')`;
  return undefined;
}

export async function makeBackend(name: BackendName, opts: BackendOptions = {}): Promise<Backend> {
  const misfit = cpuOnlyOptionsError(name, opts);
  if (misfit) throw new BackendUnavailableError(misfit);
  switch (name) {
    case 'reference':
      return new ReferenceBackend();
    case 'cpu': {
      const mod = await import('../kernels/cpu/backend.ts');
      if (!mod.cpuBackendAvailable())
        throw new BackendUnavailableError(
          `the native CPU backend is not built: ${mod.cpuBackendLoadError?.() ?? 'unknown reason'} (run npm install)`,
        );
      return new mod.CpuBackend({ computeDtype: opts.computeDtype, kvDtype: opts.kvDtype, isa: opts.cpuIsa });
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
