// The native CPU backend against the reference on the shared op table, on both kernel paths (AVX2 and
// the portable scalar loops), plus what the table cannot see: the cached GEMM weight panels must follow
// writes to the weight, and bad indices must throw instead of touching memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../reference/backend.ts';
import { runOpCases } from '../cases/runner.ts';
import { bf16Tolerances, defaultTolerances, opCases } from '../cases/table.ts';
import { checkReadInto } from '../cases/read-into.ts';
import type { Backend } from '../backend.ts';
import { CpuBackend, cpuBackendAvailable, cpuBackendLoadError } from './backend.ts';

test('the native addon is built and loads', () => {
  assert.ok(cpuBackendAvailable(), `addon failed to load: ${cpuBackendLoadError()}`);
});

test('cpu backend (best f32 kernels) matches the reference on every op case', async () => {
  const b = new CpuBackend();
  const { threads, avx2, cpuHasAvx2, isa, cpuIsa } = b.info();
  assert.ok(threads >= 1);
  assert.equal(avx2, cpuHasAvx2);
  assert.equal(isa, cpuIsa);
  assert.equal(b.computeDtype(), 'f32');
  const results = await runOpCases(() => b);
  assert.equal(results.length, opCases.length);
});

test('cpu backend (AVX2 kernels forced) matches the reference on every op case', async (t) => {
  const b = new CpuBackend({ isa: 'avx2' });
  if (b.info().cpuIsa === 'portable') return t.skip('this CPU cannot run the AVX2 path (no AVX2/FMA/F16C)');
  assert.equal(b.info().isa, 'avx2');
  await runOpCases(() => b);
});

test('cpu backend (portable scalar kernels, one thread) matches the reference on every op case', async () => {
  const b = new CpuBackend({ simd: false, threads: 1 });
  assert.equal(b.info().avx2, false);
  assert.equal(b.info().isa, 'portable');
  assert.equal(b.info().threads, 1);
  await runOpCases(() => b);
  new CpuBackend(); // back to the default pool for later tests
});

test('cpu backend (AVX512-BF16: bf16 GEMM and a bf16 KV cache) matches the reference within the bf16 tolerances', async (t) => {
  const b = new CpuBackend({ computeDtype: 'bf16', kvDtype: 'bf16' });
  if (b.info().cpuIsa !== 'avx512bf16') {
    assert.equal(b.computeDtype(), 'f32', 'bf16 compute must fall back to f32 without AVX512_BF16');
    return t.skip(`this CPU cannot run the AVX512-BF16 path (best: ${b.info().cpuIsa})`);
  }
  assert.equal(b.computeDtype(), 'bf16');
  const results = await runOpCases(() => b, { tolerances: bf16Tolerances });
  // The bf16 path must really round: an f32-exact result on the bf16 weight cases would mean it never ran.
  const bf16Err = Math.max(...results.filter((r) => r.op === 'matmul').map((r) => r.maxAbsErr));
  assert.ok(bf16Err > defaultTolerances.matmul.atol, `bf16 GEMM max error ${bf16Err} looks like f32 compute`);
  const kvErr = Math.max(...results.filter((r) => r.name.includes('via kvWrite')).map((r) => r.maxAbsErr));
  assert.ok(kvErr > defaultTolerances.attention.atol, `bf16 KV attention max error ${kvErr} looks like an f32 cache`);
  new CpuBackend();
});

test('cpu backend (AVX512-BF16: bf16 compute over an f32 KV cache, the default pairing) matches the reference within the bf16 tolerances', async (t) => {
  const b = new CpuBackend({ computeDtype: 'bf16' });
  if (b.computeDtype() !== 'bf16') return t.skip(`this CPU cannot run the AVX512-BF16 path (best: ${b.info().cpuIsa})`);
  const results = await runOpCases(() => b, { tolerances: bf16Tolerances });
  // Prefill chunks round q, K, P and V to bf16 (attention_prefill.cc); an f32-exact result would mean
  // they never took that kernel. Decode rows over an f32 cache stay f32.
  const prefill = results.filter((r) => r.op === 'attention' && r.name.includes('prefill-'));
  assert.ok(prefill.length >= 4);
  assert.ok(Math.max(...prefill.map((r) => r.maxAbsErr)) > defaultTolerances.attention.atol, 'bf16 prefill attention looks like f32');
  const decode = results.filter((r) => r.op === 'attention' && r.name.includes('attention decode'));
  assert.ok(
    Math.max(...decode.map((r) => r.maxAbsErr)) <= defaultTolerances.attention.atol,
    'decode attention over an f32 cache must stay f32',
  );
  new CpuBackend();
});

test('cpu backend options are checked', () => {
  assert.throws(() => new CpuBackend({ isa: 'sse' as never }), /isa must be one of portable, avx2, avx512bf16/);
  assert.throws(() => new CpuBackend({ computeDtype: 'f16' as never }), /computeDtype must be f32, bf16 or auto/);
  assert.throws(() => new CpuBackend({ kvDtype: 'f16' as never }), /kvDtype must be f32 or bf16/);
  new CpuBackend();
});

test('GEMM weight panels (built lazily or by prepareWeights) are rebuilt after the weight is written', async () => {
  const cpu = new CpuBackend(),
    ref = new ReferenceBackend();
  const M = 20,
    K = 40,
    N = 24;
  const x0 = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
  const w0 = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i));
  const w1 = Float32Array.from({ length: N * K }, (_, i) => Math.cos(3 * i));
  // Returns the GEMM with w0, and with w1 after a write when `second`; `prepack` packs ahead each time.
  const run = async (b: Backend, second: boolean, prepack = false) => {
    const x = b.upload(x0, [M, K], 'f32'),
      w = b.upload(w0, [N, K], 'f32'),
      out = b.alloc([M, N]);
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
  const [, want] = await run(ref, true),
    [wantFirst] = await run(ref, false);
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
  const table = b.alloc([10, 4]),
    out = b.alloc([2, 4]);
  assert.throws(() => b.gatherRows(out, table, Int32Array.of(3, 10)), /out of range/);
  assert.throws(() => b.gatherRows(out, table, Int32Array.of(1, 2, 3)), /output too small/);
  const qkv = b.alloc([1, 1, 3, 4]),
    k = b.alloc([5, 4]),
    v = b.alloc([5, 4]);
  assert.throws(() => b.kvWrite(k, v, qkv, Int32Array.of(5), 1, 4), /out of range/);
  const plan = {
    rowSeq: Int32Array.of(0),
    rowCtxLen: Int32Array.of(3),
    seqSlotOffsets: Int32Array.of(0, 2),
    seqSlots: Int32Array.of(0, 1),
    maxCtxLen: 3,
  };
  assert.throws(() => b.attention(b.alloc([1, 4]), qkv, k, v, plan, 1, 4, 0.5), /exceeds its sequence/);
  b.free(table);
  assert.throws(() => b.gatherRows(out, table, Int32Array.of(0)), /after free/);
});
