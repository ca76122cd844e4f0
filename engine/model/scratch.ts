// Reusable activation buffers. Steady-state decoding repeats the same few shapes every step, so
// allocating (and zero-filling) them per step is pure overhead: keep the most recent ones by role and
// shape. A buffer is valid until the next get() of the same role and shape: callers use it within one step.

import type { Backend, Tensor } from '../../kernels/backend.ts';

export class ScratchCache {
  private readonly entries = new Map<string, Tensor>(); // insertion order = least recently used first
  private hostBuffer = new Float32Array(0);

  constructor(
    private readonly backend: Backend,
    private readonly capacity: number,
  ) {}

  get(role: string, shape: number[]): Tensor {
    const key = `${role}:${shape.join('x')}`;
    let t = this.entries.get(key);
    if (t) {
      this.entries.delete(key); // refresh its LRU position
    } else {
      t = this.backend.alloc(shape);
      if (this.entries.size >= this.capacity) {
        const [oldKey, old] = this.entries.entries().next().value!;
        this.entries.delete(oldKey);
        this.backend.free(old);
      }
    }
    this.entries.set(key, t);
    return t;
  }

  /**
   * A host buffer of at least n floats for reading results back (the step's logits), grown to the
   * largest n seen and reused: a fresh Float32Array of a batch's logits (6 MB at 32 rows of a 50k
   * vocabulary) every step makes V8 run full collections on its background threads, which on a 2-core
   * machine take cores from the GEMMs (measured: block_main_b4_85 at batch 32, 128/256, 673 -> 724-731
   * tok/s with this buffer). Valid until the next call.
   */
  host(n: number): Float32Array {
    if (this.hostBuffer.length < n) this.hostBuffer = new Float32Array(n);
    return this.hostBuffer;
  }

  release(): void {
    for (const t of this.entries.values()) this.backend.free(t);
    this.entries.clear();
  }
}
