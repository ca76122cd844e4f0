// Opening a WebGPU device through the `webgpu` npm package (Dawn). Dawn dlopens libvulkan.so.1 at run
// time; without a Vulkan driver (or with bookworm's too-old lavapipe) there is simply no adapter, which
// is a normal outcome here, reported as a reason string rather than an exception.
//
// Lifetime rule: the object returned by `create()` must stay strongly referenced while any adapter or
// device from it is in use (otherwise V8 may collect it and Dawn crashes in ProcessEvents), and must be
// dropped at shutdown or the process never exits. GpuSession holds it for exactly that span.

// Flag values fixed by the WebGPU spec; defined here because Node has no GPUBufferUsage global, and
// this module must load (and report a reason) even where the `webgpu` package cannot.
export const BufferUsage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
export const MapMode = { READ: 0x1 } as const;

export interface GpuSession {
  /** The `create()` result; kept only so it stays alive as long as the device (see the lifetime rule). */
  gpu: GPU | null;
  adapter: GPUAdapter;
  device: GPUDevice;
  /** e.g. "llvmpipe (fallback)"; for logs and bench output. */
  description: string;
}

let lastReason = 'WebGPU not probed yet';

/** Why the last openGpuSession() returned null (or the empty string if it succeeded). */
export function webgpuUnavailableReason(): string {
  return lastReason;
}

export async function openGpuSession(): Promise<GpuSession | null> {
  let gpu: GPU | null;
  let adapter: GPUAdapter | null;
  try {
    // Loaded here, not at module scope: a platform without a dawn.node build gets a reason, not a crash.
    const { create } = await import('webgpu');
    gpu = create([]);
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    lastReason = `the webgpu package failed to load Dawn: ${(err as Error).message}`;
    return null;
  }
  if (!adapter) {
    gpu = null;
    lastReason =
      'requestAdapter() returned null (no Vulkan driver? on Debian bookworm install Mesa lavapipe from bookworm-backports, see .ci/setup.d/20-vulkan.sh)';
    return null;
  }
  // Ask for the adapter's own ceilings: the defaults (256 MiB buffers, 128 MiB bindings) are lower
  // than what real GPUs allow, and weights and KV caches want as much as the hardware gives.
  const l = adapter.limits;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredLimits: {
        maxBufferSize: l.maxBufferSize,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    });
  } catch (err) {
    lastReason = `requestDevice() failed: ${(err as Error).message}`;
    return null;
  }
  const info = adapter.info;
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  lastReason = '';
  return { gpu, adapter, device, description: `${name}${info.isFallbackAdapter ? ' (fallback)' : ''}` };
}
