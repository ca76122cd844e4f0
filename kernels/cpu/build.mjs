#!/usr/bin/env node
// Builds the native CPU backend (kernels/cpu/build/Release/blockserve_cpu.node) from source with the
// node-gyp that ships inside npm, against the headers of the Node running this script. Never downloads
// headers (--nodedir points at this Node's own prefix). Run by `npm install`; run it by hand after
// editing kernels/cpu/src. A build failure fails the install unless BLOCKSERVE_SKIP_NATIVE=1, so CI
// cannot silently lose the backend.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nodePrefix = resolve(dirname(process.execPath), '..');

function findNodeGyp() {
  const candidates = [
    process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(nodePrefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), // Windows layout
  ].filter(Boolean);
  return candidates.find((p) => existsSync(p));
}

function fail(msg) {
  if (process.env.BLOCKSERVE_SKIP_NATIVE === '1') {
    console.warn(`blockserve: skipping the native CPU backend: ${msg}`);
    process.exit(0);
  }
  console.error(`blockserve: cannot build the native CPU backend: ${msg}\n(set BLOCKSERVE_SKIP_NATIVE=1 to install without it)`);
  process.exit(1);
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) fail("npm's bundled node-gyp was not found");
if (!existsSync(join(nodePrefix, 'include', 'node', 'node_api.h'))) fail(`no Node headers under ${nodePrefix}/include/node`);

const args = [
  nodeGyp,
  'rebuild',
  `--nodedir=${nodePrefix}`,
  '--directory',
  here,
  ...(process.argv.includes('--verbose') ? ['--verbose'] : []),
];
const r = spawnSync(process.execPath, args, {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, npm_config_nodedir: nodePrefix },
});
if (r.status !== 0) fail(`node-gyp exited with ${r.status}`);
