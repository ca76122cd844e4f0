// Fault injection for tests: makes the engine fail on purpose, the three ways a real one does. Off
// unless a caller passes a FaultPlan in EngineOptions.faults; nothing on the HTTP API can set one and
// `blockserve serve` has no flag for it (only the test entry server/testing/serve-child.ts forwards one).
import type { Backend } from '../kernels/backend.ts';

export interface FaultPlan {
  /** Step number (1-based) at which a step throws, as a bug in scheduling or sampling would. */
  stepThrowsAt?: number;
  /** Step number at which the engine's worker thread exits (code 70), as a native crash would. */
  workerExitsAt?: number;
  /** Step number from which every backend allocation and read fails with an out-of-memory error. */
  oomAt?: number;
}

export const FAULT_KINDS = ['stepThrowsAt', 'workerExitsAt', 'oomAt'] as const;

export class FaultInjector {
  private steps = 0;
  /** True once the OOM fault is armed: the wrapped backend then refuses to allocate. */
  oomArmed = false;

  constructor(private readonly plan: FaultPlan) {
    for (const [k, v] of Object.entries(plan)) {
      if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault '${k}' (choose ${FAULT_KINDS.join(', ')})`);
      if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`fault ${k} must be a step number >= 1, got ${String(v)}`);
    }
  }

  /** Called by the engine loop at the start of every step. */
  beforeStep(): void {
    this.steps++;
    if (this.plan.oomAt !== undefined && this.steps >= this.plan.oomAt) this.oomArmed = true;
    if (this.plan.stepThrowsAt === this.steps) throw new Error(`injected fault: step ${this.steps} threw`);
    if (this.plan.workerExitsAt === this.steps) process.exit(70); // in a worker thread this ends only the thread
  }

  /** The backend, with alloc/upload/read failing like an exhausted device once the OOM fault is armed. */
  wrapBackend(backend: Backend): Backend {
    if (this.plan.oomAt === undefined) return backend;
    const faults = this;
    const failing = new Set(['alloc', 'upload', 'read']);
    return new Proxy(backend, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        if (!failing.has(String(prop))) return value.bind(target);
        return (...args: unknown[]) => {
          if (faults.oomArmed) throw new RangeError(`out of memory: injected allocation failure in backend.${String(prop)}`);
          return value.apply(target, args);
        };
      },
    });
  }
}
