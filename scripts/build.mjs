#!/usr/bin/env node
// The compiled build: tsc turns the TypeScript tree into JavaScript under dist/ (tsconfig.json:
// rewriteRelativeImportExtensions makes `./x.ts` imports `./x.js`). Non-TypeScript files stay where they
// are; modules find them through kernels/assets.ts. `npm install` runs this after the native addon,
// `npm start` runs it with --if-stale (a no-op unless a source is newer than the last build), and
// `npm test` type-checks and builds in the same tsc run.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const stamp = join(dist, '.built');
const SOURCE_DIRS = ['cli', 'server', 'engine', 'kernels', 'loadtest', 'protocol', 'test'];

function newestSource() {
  let newest = statSync(join(root, 'tsconfig.json')).mtimeMs;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name === 'build' || e.name === 'fixtures') continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) if (existsSync(join(root, d))) walk(join(root, d));
  return newest;
}

if (process.argv.includes('--if-stale') && existsSync(stamp) && statSync(stamp).mtimeMs >= newestSource()) process.exit(0);

let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  if (existsSync(stamp)) process.exit(0); // an install without dev dependencies, over a finished build
  console.error('build: TypeScript is not installed (a devDependency): run `npm install` without --omit=dev');
  process.exit(1);
}
const started = Date.now();
rmSync(dist, { recursive: true, force: true }); // files of deleted sources must not linger
const r = spawnSync(process.execPath, [tsc, '-p', root], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('build: tsc failed (the errors are above)');
  process.exit(r.status ?? 1);
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);
console.error(`build: dist/ compiled in ${((Date.now() - started) / 1000).toFixed(1)} s`);
