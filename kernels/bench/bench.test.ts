// The kernel benchmark's plumbing (not its speed): the hand-written ONNX MatMul model computes A x B in
// onnxruntime, and `--json` prints exactly the documented object with finite figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadOrt, matmulModel, ortLoadError } from './onnx-peer.ts';
import { runKernelBench } from './main.ts';

test('the ONNX MatMul model written by hand runs in onnxruntime and multiplies', async (t) => {
  const ort = await loadOrt();
  if (!ort) return t.skip(`onnxruntime-node unavailable: ${ortLoadError()}`);
  const M = 3,
    K = 5,
    N = 4;
  const a = Float32Array.from({ length: M * K }, (_, i) => i - 7);
  const b = Float32Array.from({ length: K * N }, (_, i) => (i % 3) - 1 + i / 10);
  const session = await ort.InferenceSession.create(matmulModel(M, K, N, b));
  const { C } = await session.run({ A: new ort.Tensor('float32', a, [M, K]) });
  assert.deepEqual(C!.dims, [M, N]);
  const got = C!.data as Float32Array;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let want = 0;
      for (let k = 0; k < K; k++) want += a[m * K + k]! * b[k * N + n]!;
      assert.ok(Math.abs(got[m * N + n]! - want) < 1e-4, `C[${m},${n}] = ${got[m * N + n]}, want ${want}`);
    }
  }
  await session.release();
});

test('bench kernels --json prints the documented object', async () => {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...args: unknown[]) => {
    lines.push(args.join(' '));
  };
  try {
    await runKernelBench({ json: true, backend: 'cpu', filter: 'M=8 K=768 N=768 f32', budgetMs: 5, threads: 0 });
  } finally {
    console.log = orig;
  }
  assert.equal(lines.length, 1, 'one JSON line and nothing else');
  const out = JSON.parse(lines[0]!);
  assert.deepEqual(Object.keys(out).sort(), ['machine', 'results']);
  assert.deepEqual(Object.keys(out.machine).sort(), ['peak_bf16_gflops', 'peak_gflops', 'threads', 'triad_gbs']);
  assert.ok(out.machine.peak_bf16_gflops === null || out.machine.peak_bf16_gflops > 0);
  assert.ok(out.machine.peak_gflops > 0 && out.machine.triad_gbs > 0 && out.machine.threads >= 1);
  assert.equal(out.results.length, 1);
  const r = out.results[0];
  assert.deepEqual(
    Object.keys(r).sort(),
    ['backend', 'compute', 'dtype', 'gbs', 'gflops', 'ms', 'op', 'peak_fraction', 'peer_gflops', 'shape'].sort(),
  );
  assert.equal(r.compute, 'f32');
  assert.equal(r.op, 'matmul');
  assert.equal(r.backend, 'cpu');
  assert.ok(r.ms > 0 && r.gflops > 0 && r.gbs > 0 && r.peak_fraction > 0);
  // 2*8*768*768 flops in r.ms milliseconds
  assert.ok(Math.abs(r.gflops - (2 * 8 * 768 * 768) / (r.ms * 1e6)) < 1e-6 * r.gflops);
  assert.ok(r.peer_gflops === null || r.peer_gflops > 0);
});
