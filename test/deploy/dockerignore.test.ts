// The .dockerignore matcher the recipe test uses, on a small tree, and the repository's .dockerignore on
// the paths that matter: what the image needs stays, local installs, weights and tests go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { applyDockerignore, isExcluded, readDockerignore } from './dockerignore.ts';
import { REPO_ROOT } from './deploy-files.ts';

test('dockerignore matcher: globs, folders, ** and ! exceptions with the last match winning', () => {
  const root = mkdtempSync(join(tmpdir(), 'dockerignore-'));
  try {
    const files = [
      'a.log',
      'src/x.ts',
      'src/x.test.ts',
      'src/deep/y.test.ts',
      'node_modules/p/i.js',
      'models/big/w.bin',
      'models/demo/config.yaml',
      'keep/build/out.o',
      'build/out.o',
    ];
    for (const f of files) {
      mkdirSync(dirname(join(root, f)), { recursive: true });
      writeFileSync(join(root, f), '');
    }
    writeFileSync(join(root, '.dockerignore'), '# comment\n*.log\nnode_modules\n**/*.test.ts\n/build/\nmodels/*\n!models/demo\n');
    const removed = applyDockerignore(root, readDockerignore(join(root, '.dockerignore'))).sort();
    assert.deepEqual(removed, ['a.log', 'build', 'models/big', 'node_modules', 'src/deep/y.test.ts', 'src/x.test.ts']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the repository .dockerignore keeps the code and the demo model, drops installs, weights and tests', () => {
  const rules = readDockerignore(join(REPO_ROOT, '.dockerignore'));
  for (const kept of [
    'package.json',
    'package-lock.json',
    'bin/blockserve.js',
    'server/main.ts',
    'kernels/cpu/binding.gyp',
    'kernels/cpu/src/gemm.cc',
    'models/demo/config.yaml',
    'deploy/healthcheck.mjs',
    'deploy/install-webgpu.sh',
    'models/blockserve-demo-block-2m/model.safetensors',
    'models/blockserve-demo-vanilla-2m/config.json',
  ]) {
    const parts = kept.split('/');
    let excluded = false;
    for (let i = 1; i <= parts.length; i++) excluded = isExcluded(parts.slice(0, i).join('/'), rules, excluded);
    assert.equal(excluded, false, `${kept} reaches the build`);
  }
  for (const dropped of ['node_modules', 'kernels/cpu/build', '.git', 'models/pythia-160m', 'engine/model/model.test.ts']) {
    assert.equal(isExcluded(dropped, rules), true, `${dropped} stays out of the build context`);
  }
});
