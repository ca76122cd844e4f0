#!/usr/bin/env node
// The README's test command: house rules (Biome: formatting and lint), type-check (and build) the whole
// tree, then run every *.test.ts with node's test runner.
// Files run one at a time: this machine has 2 cores and several suites start servers or native pools.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['test', 'server', 'engine', 'kernels', 'loadtest', 'protocol'];
const skipDirs = new Set(['node_modules', 'build', 'fixtures']);
const filter = process.argv.slice(2);
function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    if (skipDirs.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
}
const files = [];
for (const r of roots) walk(r, files);
files.sort();
const selected = filter.length ? files.filter((f) => filter.some((s) => f.includes(s))) : files;

// House rules first, on the whole run only: Biome formats and lints the tree in well under a second
// (biome.json; `npx biome check --write .` fixes what it can). Warnings fail too.
if (!filter.length) {
  const biome = join('node_modules', '@biomejs', 'biome', 'bin', 'biome');
  const lint = spawnSync(process.execPath, [biome, 'check', '--error-on-warnings', '.'], { stdio: 'inherit' });
  if (lint.status !== 0) {
    console.error('house rules failed: run `npx biome check --write .` and fix what remains');
    process.exit(1);
  }
}

// The whole run type-checks first, in the same tsc pass that writes the compiled build (dist/) that
// `bin/blockserve.js` runs. A filtered run skips it, except that suites starting the real command get a
// build when a source is newer than the last one.
const needsBuild = selected.some((f) => readFileSync(f, 'utf8').includes('bin/blockserve.js'));
if (!filter.length || needsBuild) {
  const tc = spawnSync(process.execPath, ['scripts/build.mjs', ...(filter.length ? ['--if-stale'] : [])], { stdio: 'inherit' });
  if (tc.status !== 0) {
    console.error('typecheck failed');
    process.exit(1);
  }
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
