// The reference backend: plain TypeScript loops, written to be obviously right rather than fast.
// It is the oracle every other backend is tested against (kernels/cases) and the backend the model
// parity tests run on first. f16/bf16 weights are widened to f32 once, at upload.

import type { AttentionPlan, Backend, DType, MatmulOptions, Tensor } from '../backend.ts';
import { checkReadDestination, numel, rowsOf } from '../backend.ts';
import { toF32Array } from '../dtype.ts';
import { erf } from './erf.ts';
import type { SamplingPasses } from '../sampling.ts';
import { ReferenceSamplingPasses } from './sampling.ts';

interface RefHandle {
  data: Float32Array; // always f32 (weights widened at upload)
  freed: boolean;
}

function h(t: Tensor): RefHandle {
  const handle = t.handle as RefHandle;
  if (handle.freed) throw new Error('reference backend: tensor used after free');
  return handle;
}

function f(t: Tensor): Float32Array {
  return h(t).data;
}

export class ReferenceBackend implements Backend {
  readonly name = 'reference';

  alloc(shape: readonly number[]): Tensor {
    return { shape: [...shape], dtype: 'f32', handle: { data: new Float32Array(numel(shape)), freed: false } };
  }

  upload(data: Float32Array | Uint16Array, shape: readonly number[], dtype: DType): Tensor {
    if (data.length !== numel(shape)) throw new Error(`upload: ${data.length} elements for shape [${shape}]`);
    if ((dtype === 'f32') !== data instanceof Float32Array)
      throw new Error(`upload: ${dtype} needs ${dtype === 'f32' ? 'Float32Array' : 'Uint16Array'}`);
    const widened = dtype === 'f32' ? new Float32Array(data as Float32Array) : toF32Array(data, dtype);
    return { shape: [...shape], dtype, handle: { data: widened, freed: false } };
  }

  write(t: Tensor, data: Float32Array, offset = 0): void {
    f(t).set(data, offset);
  }

  async read(t: Tensor, count?: number, into?: Float32Array): Promise<Float32Array> {
    const d = f(t);
    const n = count ?? d.length;
    if (!into) return d.slice(0, n);
    checkReadDestination(into, n);
    into.set(d.subarray(0, n));
    return into.subarray(0, n);
  }

  free(t: Tensor): void {
    const handle = t.handle as RefHandle;
    handle.freed = true;
    handle.data = new Float32Array(0);
  }

  async sync(): Promise<void> {}
  dispose(): void {}

  samplingPasses(): SamplingPasses {
    return new ReferenceSamplingPasses();
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, opts: MatmulOptions = {}): void {
    const [N, K] = w.shape as [number, number];
    const { rows: M, width: xK } = rowsOf(x);
    if (xK !== K) throw new Error(`matmul: x width ${xK} != weight K ${K}`);
    if (numel(out.shape) !== M * N) throw new Error(`matmul: out has ${numel(out.shape)} elements, want ${M}x${N}`);
    const xd = f(x),
      wd = f(w),
      od = f(out);
    const bias = opts.bias ? f(opts.bias) : null;
    const res = opts.residual ? f(opts.residual) : null;
    const row = new Float64Array(N);
    for (let m = 0; m < M; m++) {
      const xo = m * K;
      for (let n = 0; n < N; n++) {
        const wo = n * K;
        let acc = 0;
        for (let k = 0; k < K; k++) acc += xd[xo + k]! * wd[wo + k]!;
        if (bias) acc += bias[n]!;
        if (opts.gelu) acc = 0.5 * acc * (1 + erf(acc / Math.SQRT2));
        row[n] = acc;
      }
      // Written after the whole row is computed so `residual` may alias `out`.
      for (let n = 0; n < N; n++) od[m * N + n] = row[n]! + (res ? res[m * N + n]! : 0);
    }
  }

  layerNorm(out: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, eps: number): void {
    const { rows, width } = rowsOf(x);
    const xd = f(x),
      od = f(out),
      g = f(gamma),
      b = f(beta);
    for (let r = 0; r < rows; r++) {
      const o = r * width;
      let mean = 0;
      for (let i = 0; i < width; i++) mean += xd[o + i]!;
      mean /= width;
      let v = 0;
      for (let i = 0; i < width; i++) v += (xd[o + i]! - mean) ** 2;
      const inv = 1 / Math.sqrt(v / width + eps);
      for (let i = 0; i < width; i++) od[o + i] = (xd[o + i]! - mean) * inv * g[i]! + b[i]!;
    }
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    const ad = f(a),
      bd = f(b),
      od = f(out);
    if (ad.length !== bd.length || od.length !== ad.length) throw new Error('add: shape mismatch');
    for (let i = 0; i < od.length; i++) od[i] = ad[i]! + bd[i]!;
  }

  gatherRows(out: Tensor, src: Tensor, rows: Int32Array, outRowOffset = 0, width?: number): void {
    const w = width ?? rowsOf(src).width;
    const sd = f(src),
      od = f(out);
    const srcRows = sd.length / w;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (r < 0 || r >= srcRows) throw new Error(`gatherRows: row ${r} out of range [0, ${srcRows})`);
      const dst = (outRowOffset + i) * w;
      if (dst + w > od.length) throw new Error('gatherRows: output too small');
      od.set(sd.subarray(r * w, r * w + w), dst);
    }
  }

  rotary(qkv: Tensor, positions: Int32Array, numHeads: number, headDim: number, rotDims: number, base: number): void {
    const d = f(qkv);
    const T = positions.length;
    const half = rotDims / 2;
    // Angles are formed in f32 like torch's cached cos/sin tables, so long positions agree too.
    const invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) invFreq[i] = Math.fround(1 / Math.fround(base ** Math.fround((2 * i) / rotDims)));
    for (let t = 0; t < T; t++) {
      const pos = positions[t]!;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos * invFreq[i]!);
        const c = Math.fround(Math.cos(angle)),
          s = Math.fround(Math.sin(angle));
        for (let hh = 0; hh < numHeads; hh++) {
          for (const part of [0, 1]) {
            // q then k
            const o = ((t * numHeads + hh) * 3 + part) * headDim;
            const x1 = d[o + i]!,
              x2 = d[o + i + half]!;
            d[o + i] = x1 * c - x2 * s;
            d[o + i + half] = x2 * c + x1 * s;
          }
        }
      }
    }
  }

  kvWrite(kCache: Tensor, vCache: Tensor, qkv: Tensor, slots: Int32Array, numHeads: number, headDim: number): void {
    const d = f(qkv),
      kd = f(kCache),
      vd = f(vCache);
    const width = numHeads * headDim;
    for (let t = 0; t < slots.length; t++) {
      const slot = slots[t]!;
      if ((slot + 1) * width > kd.length) throw new Error(`kvWrite: slot ${slot} out of range`);
      for (let hh = 0; hh < numHeads; hh++) {
        const o = (t * numHeads + hh) * 3 * headDim;
        kd.set(d.subarray(o + headDim, o + 2 * headDim), slot * width + hh * headDim);
        vd.set(d.subarray(o + 2 * headDim, o + 3 * headDim), slot * width + hh * headDim);
      }
    }
  }

  attention(
    out: Tensor,
    qkv: Tensor,
    kCache: Tensor,
    vCache: Tensor,
    plan: AttentionPlan,
    numHeads: number,
    headDim: number,
    scale: number,
  ): void {
    const d = f(qkv),
      kd = f(kCache),
      vd = f(vCache),
      od = f(out);
    const width = numHeads * headDim;
    const T = plan.rowSeq.length;
    const scores = new Float64Array(plan.maxCtxLen);
    for (let t = 0; t < T; t++) {
      const s = plan.rowSeq[t]!;
      const ctx = plan.rowCtxLen[t]!;
      const base = plan.seqSlotOffsets[s]!;
      if (ctx < 1 || base + ctx > plan.seqSlotOffsets[s + 1]!) throw new Error(`attention: row ${t} context ${ctx} exceeds its sequence`);
      for (let hh = 0; hh < numHeads; hh++) {
        const qo = (t * numHeads + hh) * 3 * headDim;
        let max = -Infinity;
        for (let j = 0; j < ctx; j++) {
          const ko = plan.seqSlots[base + j]! * width + hh * headDim;
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += d[qo + i]! * kd[ko + i]!;
          scores[j] = dot * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let sum = 0;
        for (let j = 0; j < ctx; j++) {
          scores[j] = Math.exp(scores[j]! - max);
          sum += scores[j]!;
        }
        const oo = t * width + hh * headDim;
        for (let i = 0; i < headDim; i++) {
          let acc = 0;
          for (let j = 0; j < ctx; j++) acc += scores[j]! * vd[plan.seqSlots[base + j]! * width + hh * headDim + i]!;
          od[oo + i] = acc / sum;
        }
      }
    }
  }
}
