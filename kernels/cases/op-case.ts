// What one op case of the table is (table.ts holds the cases, sampling-cases.ts the sampling passes'
// ones; runner.ts runs them against the reference).

import type { Backend } from '../backend.ts';
import type { Rng } from './rng.ts';

export type OpName = 'matmul' | 'layerNorm' | 'add' | 'gatherRows' | 'rotary' | 'kvWrite' | 'attention' | 'sampling';

/** What a case read back: f32 tensors, or f64 results of the sampling passes (compared as doubles). */
export type CaseOutput = Float32Array | Float64Array;

/** |got - want| <= atol + rtol * |want|, elementwise. */
export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface OpCase {
  name: string;
  op: OpName;
  /** Builds inputs from `rng` on `b`, runs the op, returns every output it wrote (read back). */
  run(b: Backend, rng: Rng): Promise<CaseOutput[]>;
}
