// Runs the op table on a backend and on the reference with the same seeded inputs and compares outputs.

import type { Backend } from '../backend.ts';
import { ReferenceBackend } from '../reference/backend.ts';
import { Rng, hashName } from './rng.ts';
import { defaultTolerances, opCases } from './table.ts';
import type { CaseOutput, OpCase, OpName, Tolerance } from './table.ts';

export interface RunOpCasesOptions {
  seed?: number;
  /** Only cases whose name contains one of these substrings. */
  filter?: string[];
  /** Per-op tolerance overrides (a backend with looser math says so here, visibly, in its test). */
  tolerances?: Partial<Record<OpName, Tolerance>>;
  /** The oracle; a fresh ReferenceBackend by default. */
  reference?: Backend;
  /** Called after each case (progress logging). */
  onResult?: (r: CaseResult) => void;
}

export interface CaseResult {
  name: string;
  op: OpName;
  ok: boolean;
  /** Largest |got - want| over all outputs. */
  maxAbsErr: number;
  /** Elements compared (proves the case compared something). */
  compared: number;
  message?: string;
}

interface Mismatch {
  index: number;
  got: number;
  want: number;
}

function compare(got: CaseOutput, want: CaseOutput, tol: Tolerance): { maxAbsErr: number; bad?: Mismatch; badCount: number } {
  let maxAbsErr = 0;
  let bad: Mismatch | undefined;
  let badCount = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!,
      w = want[i]!;
    const err = Math.abs(g - w);
    // NaN fails the <= test, so a NaN anywhere in `got` counts as a mismatch.
    if (!(err <= tol.atol + tol.rtol * Math.abs(w))) {
      badCount++;
      bad ??= { index: i, got: g, want: w };
    }
    if (err > maxAbsErr || Number.isNaN(err)) maxAbsErr = Number.isNaN(err) ? Infinity : err;
  }
  return { maxAbsErr, bad, badCount };
}

/** Runs one case on `backend` and `reference` with identical inputs and compares. */
export async function runOpCase(c: OpCase, backend: Backend, reference: Backend, seed: number, tol: Tolerance): Promise<CaseResult> {
  const caseSeed = (seed ^ hashName(c.name)) >>> 0;
  const want = await c.run(reference, new Rng(caseSeed));
  let got: CaseOutput[];
  try {
    got = await c.run(backend, new Rng(caseSeed));
  } catch (e) {
    return { name: c.name, op: c.op, ok: false, maxAbsErr: Infinity, compared: 0, message: `threw: ${(e as Error).message}` };
  }
  let maxAbsErr = 0;
  let compared = 0;
  for (let o = 0; o < want.length; o++) {
    const w = want[o]!,
      g = got[o];
    if (!g || g.length !== w.length) {
      return {
        name: c.name,
        op: c.op,
        ok: false,
        maxAbsErr: Infinity,
        compared,
        message: `output ${o}: ${g?.length} elements, want ${w.length}`,
      };
    }
    for (const v of w) if (!Number.isFinite(v)) throw new Error(`${c.name}: reference output is not finite (the case is broken)`);
    const r = compare(g, w, tol);
    maxAbsErr = Math.max(maxAbsErr, r.maxAbsErr);
    compared += w.length;
    if (r.bad) {
      return {
        name: c.name,
        op: c.op,
        ok: false,
        maxAbsErr,
        compared,
        message: `output ${o}: ${r.badCount}/${w.length} elements off; first at [${r.bad.index}] got ${r.bad.got} want ${r.bad.want} (atol ${tol.atol}, rtol ${tol.rtol})`,
      };
    }
  }
  return { name: c.name, op: c.op, ok: true, maxAbsErr, compared };
}

/**
 * Runs every op case on the backend made by `makeBackend` and on the reference, and throws one error
 * listing every case that was off (or threw). Returns the per-case results when all pass.
 */
export async function runOpCases(makeBackend: () => Backend | Promise<Backend>, opts: RunOpCasesOptions = {}): Promise<CaseResult[]> {
  const seed = opts.seed ?? 1234;
  const backend = await makeBackend();
  const reference = opts.reference ?? new ReferenceBackend();
  const cases = opts.filter ? opCases.filter((c) => opts.filter!.some((f) => c.name.includes(f))) : opCases;
  if (cases.length === 0) throw new Error(`runOpCases: no case matches ${JSON.stringify(opts.filter)}`);
  const results: CaseResult[] = [];
  try {
    for (const c of cases) {
      const tol = opts.tolerances?.[c.op] ?? defaultTolerances[c.op];
      const r = await runOpCase(c, backend, reference, seed, tol);
      results.push(r);
      opts.onResult?.(r);
    }
  } finally {
    backend.dispose();
    if (!opts.reference) reference.dispose();
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    const lines = failed.map((r) => `  ${r.name}: ${r.message}`);
    throw new Error(`${backend.name}: ${failed.length} of ${results.length} op cases off the reference:\n${lines.join('\n')}`);
  }
  return results;
}
