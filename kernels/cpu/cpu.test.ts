// The native CPU backend against the reference on the shared op table, on both kernel paths (AVX2 and
// the portable scalar loops), plus what the table cannot see: the cached GEMM weight panels must follow
// writes to the weight, and bad indices must throw instead of touching memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../reference/backend.ts';
import { runOpCases } from '../cases/runner.ts';
import { opCases } from '../cases/table.ts';
import { checkReadInto } from '../cases/read-into.ts';
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

test('GEMM weight panels are rebuilt after the weight is written', async () => {
  const cpu = new CpuBackend(), ref = new ReferenceBackend();
  const M = 20, K = 40, N = 24;
  const x0 = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
  const w0 = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i));
  const w1 = Float32Array.from({ length: N * K }, (_, i) => Math.cos(3 * i));
  const run = async (b: CpuBackend | ReferenceBackend, second: boolean) => {
    const x = b.upload(x0, [M, K], 'f32'), w = b.upload(w0, [N, K], 'f32'), out = b.alloc([M, N]);
    b.matmul(out, x, w);
    if (second) { b.write(w, w1); b.matmul(out, x, w); }
    return b.read(out);
  };
  const got = await run(cpu, true), want = await run(ref, true), stale = await run(ref, false);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4, `element ${i}`);
  assert.ok(want.some((v, i) => Math.abs(v - stale[i]!) > 1e-2), 'the write must change the result');
});

test('weights packed ahead by prepareWeights give the same GEMM, and are rebuilt after a write', async () => {
  const cpu = new CpuBackend(), ref = new ReferenceBackend();
  const M = 20, K = 40, N = 24;
  const x0 = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
  const w0 = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i));
  const w1 = Float32Array.from({ length: N * K }, (_, i) => Math.cos(5 * i));
  const x = cpu.upload(x0, [M, K], 'f32'), w = cpu.upload(w0, [N, K], 'f32'), out = cpu.alloc([M, N]);
  cpu.prepareWeights([w]);
  cpu.matmul(out, x, w);
  const rx = ref.upload(x0, [M, K], 'f32'), rw = ref.upload(w0, [N, K], 'f32'), rout = ref.alloc([M, N]);
  ref.matmul(rout, rx, rw);
  const close = (a: Float32Array, b: Float32Array) => a.every((v, i) => Math.abs(v - b[i]!) < 1e-4);
  assert.ok(close(await cpu.read(out), await ref.read(rout)), 'prepacked weight');
  cpu.write(w, w1);
  cpu.prepareWeights([w]);
  cpu.matmul(out, x, w);
  ref.write(rw, w1);
  ref.matmul(rout, rx, rw);
  assert.ok(close(await cpu.read(out), await ref.read(rout)), 'prepacked after a write');
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
