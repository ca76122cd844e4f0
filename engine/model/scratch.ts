// Reusable activation buffers. Steady-state decoding repeats the same few shapes every step, so
// allocating (and zero-filling) them per step is pure overhead: keep the most recent ones by role and
// shape. A buffer is valid until the next get() of the same role and shape: callers use it within one step.

import type { Backend, Tensor } from '../../kernels/backend.ts';

export class ScratchCache {
  private readonly entries = new Map<string, Tensor>(); // insertion order = least recently used first

  constructor(private readonly backend: Backend, private readonly capacity: number) {}

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

  release(): void {
    for (const t of this.entries.values()) this.backend.free(t);
    this.entries.clear();
  }
}
