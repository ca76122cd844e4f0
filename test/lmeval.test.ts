// lm-evaluation-harness (PyPI lm_eval, its `local-completions` model) against `blockserve serve`, through
// tools/lmeval/run.py: a local multiple-choice task on two block checkpoints made by the authors' classes
// (one trained with first-block padding, one without) and a vanilla one. Every loglikelihood must equal the
// one the authors' own lm-eval code gives the same request (committed under test/fixtures/lmeval/, made by
// run.py --authors-python ... --write-figures) within 1e-4, and the accuracy must be identical.
// Needs a Python with lm_eval: BLOCKSERVE_LMEVAL_PYTHON, else CI's venv (.ci/setup.d/60-lmeval.sh), else python3.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const CI_VENV = '/opt/blockserve-lmeval/bin/python'; // .ci/setup.d/60-lmeval.sh
const python = process.env.BLOCKSERVE_LMEVAL_PYTHON ?? (existsSync(CI_VENV) ? CI_VENV : 'python3');

function skipReason(): string | false {
  const probe = spawnSync(python, ['-c', 'import lm_eval.models.openai_completions, tenacity'], { encoding: 'utf8', timeout: 120_000 });
  if (probe.error) return `${python} not runnable (${probe.error.message}); set BLOCKSERVE_LMEVAL_PYTHON (see .ci/setup.d/60-lmeval.sh)`;
  if (probe.status !== 0) return `lm_eval is not importable with ${python}; set BLOCKSERVE_LMEVAL_PYTHON (see .ci/setup.d/60-lmeval.sh)`;
  if (!existsSync(join(root, 'kernels', 'cpu', 'build', 'Release', 'blockserve_cpu.node')))
    return 'the native CPU backend is not built (npm install)';
  return false;
}

const skip = skipReason();
if (skip) console.log(`# lmeval.test.ts skipped: ${skip}`);

test("lm-eval through blockserve equals the authors' evaluation code (loglikelihoods within 1e-4, same accuracy)", {
  skip,
  timeout: 600_000,
}, () => {
  const run = spawnSync(python, [join(root, 'tools', 'lmeval', 'run.py'), '--backend', 'cpu'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 580_000,
  });
  const out = `${run.stdout}\n${run.stderr}`;
  const lines = run.stdout.split('\n').filter((l) => l.startsWith('lmeval '));
  for (const l of lines) console.log(`# ${l}`);
  assert.equal(run.status, 0, `run.py failed:\n${out.slice(-4000)}`);
  assert.equal(lines.length, 3, `one line per checkpoint:\n${out.slice(-4000)}`);
  for (const name of ['narrow_token_decoder', 'l8_sequential_nopad', 'vanilla_tiny']) {
    const line = lines.find((l) => l.startsWith(`lmeval ${name} `));
    assert.ok(line?.endsWith(': OK'), `${name}: ${line}`);
  }
});
