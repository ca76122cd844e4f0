#!/usr/bin/env node
// Start-up time and memory of `blockserve serve` (the demo model, cpu backend): process start to the first
// /health 200 (the code is loaded and listening: what the way of running TypeScript changes) and to the first
// /ready 200 (the model is built too), median and min of N runs, and the process's RSS (main thread +
// engine worker) right after ready.
// Three ways to run it: the compiled build (node bin/blockserve.js, what npm start and the image run), and
// the TypeScript sources through tsx with its transpile cache warm and cold (a fresh TMPDIR per run, as a
// pod with an emptyDir /tmp starts). Usage: node server/bench/startup.mjs [runs=5]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const runs = Number(process.argv[2] ?? 5);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const MODES = {
  compiled: { argv: ['bin/blockserve.js', 'serve'] },
  'tsx (warm cache)': { argv: ['--import', 'tsx', 'cli/main.ts', 'serve'], tmp: 'shared' },
  'tsx (cold cache)': { argv: ['--import', 'tsx', 'cli/main.ts', 'serve'], tmp: 'fresh' },
};

const sharedTmp = mkdtempSync(join(tmpdir(), 'bs-startup-'));

async function once(mode, port) {
  const m = MODES[mode];
  const tmp = m.tmp === 'fresh' ? mkdtempSync(join(tmpdir(), 'bs-startup-cold-')) : sharedTmp;
  const started = performance.now();
  const child = spawn(process.execPath, [...m.argv, '--port', String(port), '--log-level', 'warn'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TMPDIR: tmp },
  });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const until = async (path) => {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${mode}: server exited ${child.exitCode}: ${err}`);
      const ok = await fetch(`http://127.0.0.1:${port}${path}`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return performance.now() - started;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  try {
    const healthMs = await until('/health');
    const ms = await until('/ready');
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
    return { healthMs, ms, rss };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    if (tmp !== sharedTmp) rmSync(tmp, { recursive: true, force: true });
  }
}

const results = {};
let port = 18900 + Math.floor(Math.random() * 500);
// Interleaved, so that a busy moment on a shared machine hits every mode alike; one unmeasured warm-up each.
for (const mode of Object.keys(MODES)) await once(mode, port++);
for (let i = 0; i < runs; i++) {
  for (const mode of Object.keys(MODES)) {
    const r = await once(mode, port++);
    (results[mode] ??= []).push(r);
  }
}
rmSync(sharedTmp, { recursive: true, force: true });
console.log(`| run | start to /health 200, median (min) | start to /ready 200, median (min) | RSS after ready, median (MiB) |`);
console.log('|---|---|---|---|');
for (const [mode, rs] of Object.entries(results)) {
  const h = rs.map((r) => r.healthMs),
    ms = rs.map((r) => r.ms),
    rss = rs.map((r) => r.rss);
  console.log(
    `| ${mode} | ${median(h).toFixed(0)} ms (${Math.min(...h).toFixed(0)}) | ${median(ms).toFixed(0)} ms (${Math.min(...ms).toFixed(0)}) | ${median(rss).toFixed(0)} |`,
  );
}
console.log(
  `(${runs} runs each after one warm-up, interleaved; node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg()[0].toFixed(1)})`,
);
