import { CpuBackend } from '../../kernels/cpu/backend.ts';
import { runOpCases } from '../../kernels/cases/runner.ts';
import { bf16Tolerances } from '../../kernels/cases/table.ts';
for (const kv of ['f32', 'bf16'] as const) {
  const b = new CpuBackend({ computeDtype: 'bf16', kvDtype: kv });
  const results = await runOpCases(() => b, { tolerances: bf16Tolerances });
  for (const r of results.filter((r) => r.op === 'attention')) console.log(kv, r.ok, r.maxAbsErr.toExponential(2), r.name);
}
const f = new CpuBackend({});
for (const r of (await runOpCases(() => f)).filter((r) => r.op === 'attention'))
  console.log('f32', r.ok, r.maxAbsErr.toExponential(2), r.name);
