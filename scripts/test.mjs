#!/usr/bin/env node
// The README's test command: type-check the whole tree, then run every *.test.ts with node's test runner.
// Files run one at a time: this machine has 2 cores and several suites start servers or native pools.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['test', 'server', 'engine', 'kernels', 'loadtest', 'protocol'];
const skipDirs = new Set(['node_modules', 'build', 'fixtures']);
const filter = process.argv.slice(2);
function walk(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return; }
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

if (!filter.length) {
  const tc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], { stdio: 'inherit' });
  if (tc.status !== 0) { console.error('typecheck failed'); process.exit(1); }
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
