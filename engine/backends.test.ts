// makeBackend's rules for the CPU-only options (--compute-dtype, --kv-dtype, --cpu-isa) and what the CPU
// backend says it runs (the 'ready' log and bench print it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendUnavailableError, makeBackend } from './backends.ts';
import { runBench } from './bench/main.ts';
import { OptionError } from './options.ts';
import { cpuBackendAvailable, cpuBackendLoadError } from '../kernels/cpu/backend.ts';

test('the CPU-only options name the cpu backend when given another', async () => {
  await assert.rejects(
    makeBackend('reference', { cpuIsa: 'avx2' }),
    (e: unknown) =>
      e instanceof BackendUnavailableError && /--cpu-isa avx2 needs the cpu backend \(got 'reference'\)/.test((e as Error).message),
  );
  await assert.rejects(
    makeBackend('reference', { kvDtype: 'bf16' }),
    (e: unknown) => e instanceof BackendUnavailableError && /--kv-dtype bf16 need the cpu backend/.test((e as Error).message),
  );
  // bench refuses it before its probes run, in the same words.
  await assert.rejects(
    runBench(['--preset', 'vanilla_31', '--backend', 'reference', '--cpu-isa', 'portable'], {}),
    (e: unknown) => e instanceof OptionError && /--cpu-isa portable needs the cpu backend/.test((e as Error).message),
  );
  // auto is every backend's default, so it is no error anywhere.
  const b = await makeBackend('reference', { cpuIsa: 'auto', computeDtype: 'auto' });
  assert.equal(b.name, 'reference');
  b.dispose();
});

test('--cpu-isa caps the CPU kernels and the backend says so', {
  skip: cpuBackendAvailable() ? false : `native addon not built: ${cpuBackendLoadError()}`,
}, async () => {
  const portable = await makeBackend('cpu', { cpuIsa: 'portable', computeDtype: 'auto' });
  const info = (portable as unknown as { info(): { isa: string; cpuIsa: string } }).info();
  assert.equal(info.isa, 'portable');
  const line = portable.describe?.() ?? '';
  // On a CPU with SIMD paths the cap is below its best: the line must say both; bf16 GEMMs need avx512bf16.
  assert.match(line, /^cpu: portable kernels/);
  if (info.cpuIsa !== 'portable') assert.match(line, new RegExp(`capped: the CPU runs ${info.cpuIsa}`));
  assert.match(line, /f32 GEMMs, f32 KV cache$/);

  const auto = await makeBackend('cpu', { cpuIsa: 'auto', kvDtype: 'bf16' });
  const best = (auto as unknown as { info(): { isa: string; cpuIsa: string } }).info();
  assert.equal(best.isa, best.cpuIsa, 'auto runs the best path the CPU has');
  assert.doesNotMatch(auto.describe?.() ?? '', /capped/);
  assert.match(auto.describe?.() ?? '', /bf16 KV cache$/);
});
