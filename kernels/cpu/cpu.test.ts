// The native CPU backend against the reference on the shared op table, on both kernel paths (AVX2 and
// the portable scalar loops), plus what the table cannot see: the cached GEMM weight panels must follow
// writes to the weight, and bad indices must throw instead of touching memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../reference/backend.ts';
import { runOpCases } from '../cases/runner.ts';
import { opCases } from '../cases/table.ts';
import { checkReadInto } from '../cases/read-into.ts';
import type { Backend } from '../backend.ts';
import { CpuBackend, cpuBackendAvailable, cpuBackendLoadError } from './backend.ts';

test('the native addon is built and loads', () => {
  assert.ok(cpuBackendAvailable(), `addon failed to load: ${cpuBackendLoadError()}`);
});

test('cpu backend (SIMD kernels) matches the reference on every op case', async () => {
  const b = new CpuBackend();
  const { threads, avx2, cpuHasAvx2 } = b.info();
  assert.ok(threads >= 1);
  assert.equal(avx2, cpuHasAvx2);
  const results = await runOpCases(() => b);
  assert.equal(results.length, opCases.length);
});

test('cpu backend (portable scalar kernels, one thread) matches the reference on every op case', async () => {
  const b = new CpuBackend({ simd: false, threads: 1 });
  assert.equal(b.info().avx2, false);
  assert.equal(b.info().threads, 1);
  await runOpCases(() => b);
  new CpuBackend(); // back to the default pool for later tests
});

test('GEMM weight panels (built lazily or by prepareWeights) are rebuilt after the weight is written', async () => {
  const cpu = new CpuBackend(), ref = new ReferenceBackend();
  const M = 20, K = 40, N = 24;
  const x0 = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
  const w0 = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i));
  const w1 = Float32Array.from({ length: N * K }, (_, i) => Math.cos(3 * i));
  // Returns the GEMM with w0, and with w1 after a write when `second`; `prepack` packs ahead each time.
  const run = async (b: Backend, second: boolean, prepack = false) => {
    const x = b.upload(x0, [M, K], 'f32'), w = b.upload(w0, [N, K], 'f32'), out = b.alloc([M, N]);
    if (prepack) b.prepareWeights?.([w]);
    b.matmul(out, x, w);
    const first = (await b.read(out)).slice();
    if (second) {
      b.write(w, w1);
      if (prepack) b.prepareWeights?.([w]);
      b.matmul(out, x, w);
    }
    return [first, await b.read(out)] as const;
  };
  const [, want] = await run(ref, true), [wantFirst] = await run(ref, false);
  const close = (a: Float32Array, b: Float32Array) => a.every((v, i) => Math.abs(v - b[i]!) < 1e-4);
  assert.ok(!close(want, wantFirst), 'the write must change the result');
  for (const prepack of [false, true]) {
    const [first, got] = await run(cpu, true, prepack);
    assert.ok(close(first, wantFirst), `before the write (prepack ${prepack})`);
    assert.ok(close(got, want), `after the write (prepack ${prepack})`);
  }
  assert.throws(() => cpu.prepareWeights([cpu.alloc([N * K])]), /must be \[N, K\]/);
});

test('read into a caller buffer (cpu and reference backends)', async () => {
  await checkReadInto(new CpuBackend());
  await checkReadInto(new ReferenceBackend());
});

test('out-of-range indices throw instead of touching memory', () => {
  const b = new CpuBackend();
  const table = b.alloc([10, 4]), out = b.alloc([2, 4]);
  assert.throws(() => b.gatherRows(out, table, Int32Array.of(3, 10)), /out of range/);
  assert.throws(() => b.gatherRows(out, table, Int32Array.of(1, 2, 3)), /output too small/);
  const qkv = b.alloc([1, 1, 3, 4]), k = b.alloc([5, 4]), v = b.alloc([5, 4]);
  assert.throws(() => b.kvWrite(k, v, qkv, Int32Array.of(5), 1, 4), /out of range/);
  const plan = { rowSeq: Int32Array.of(0), rowCtxLen: Int32Array.of(3), seqSlotOffsets: Int32Array.of(0, 2), seqSlots: Int32Array.of(0, 1), maxCtxLen: 3 };
  assert.throws(() => b.attention(b.alloc([1, 4]), qkv, k, v, plan, 1, 4, 0.5), /exceeds its sequence/);
  b.free(table);
  assert.throws(() => b.gatherRows(out, table, Int32Array.of(0)), /after free/);
});
