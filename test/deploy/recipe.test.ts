// The image recipe, replayed without a container engine: base images from Docker Hub cannot be pulled on
// the project's machines, so this runs the Dockerfile's own build steps (its RUN lines, parsed, not copied)
// in a clean clone with the .dockerignore applied, starts the server with the final stage's ENV, USER and
// CMD, and talks to it: /health, /ready, the HEALTHCHECK command, /metrics, one completion, SIGTERM.
// What it cannot prove: the base images themselves and the runtime-stage RUN lines (system packages).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { commandArgv, defaultTarget, envPairs, healthcheck, instructionsOf, parseDockerfile, runCommand, stage } from './dockerfile.ts';
import { applyDockerignore, readDockerignore } from './dockerignore.ts';
import { REPO_ROOT } from './deploy-files.ts';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The parent's environment without npm's per-run variables (a nested npm must not inherit `npm test`'s). */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('npm_') && !k.startsWith('BLOCKSERVE_')) env[k] = v;
  }
  return env;
}

async function waitFor(url: string, status: number, deadlineMs: number, server: ChildProcess): Promise<Response> {
  const end = Date.now() + deadlineMs;
  let last = 'no answer';
  while (Date.now() < end) {
    if (server.exitCode !== null) throw new Error(`server exited with ${server.exitCode} while waiting for ${url}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === status) return res;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer ${status} within ${deadlineMs} ms (last: ${last})`);
}

test('image recipe: Dockerfile build steps in a clean clone, then the final stage starts and serves', {
  timeout: 10 * 60_000,
}, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'blockserve-recipe-'));
  chmodSync(work, 0o755); // the server runs as the image's non-root user below and must reach the clone
  const app = join(work, 'app');
  let server: ChildProcess | undefined;
  let serverLog = '';
  try {
    const clone = spawnSync('git', ['clone', '--quiet', REPO_ROOT, app], { encoding: 'utf8' });
    assert.equal(clone.status, 0, clone.stderr);
    const { stages } = parseDockerfile(readFileSync(join(app, 'Dockerfile'), 'utf8'));
    // COPY . . sends the context minus .dockerignore: the replay sees the same tree.
    const removed = applyDockerignore(app, readDockerignore(join(app, '.dockerignore')));
    t.diagnostic(`.dockerignore removed ${removed.length} paths: ${removed.slice(0, 8).join(', ')}${removed.length > 8 ? ', ...' : ''}`);

    // Build stage: system packages before `COPY . .` (checked present here), the recipe after it (run).
    const build = stage(stages, 'build');
    const copyAll = build.instructions.findIndex((i) => i.keyword === 'COPY' && i.args === '. .');
    assert.ok(copyAll >= 0, 'the build stage copies the context with COPY . .');
    const buildEnv: Record<string, string> = {};
    for (const [index, ins] of build.instructions.entries()) {
      if (ins.keyword === 'ENV') Object.assign(buildEnv, envPairs(ins.args));
      else if (ins.keyword === 'RUN' && index < copyAll) {
        const pkgs = /apt-get install -y --no-install-recommends ([^&]+)/.exec(ins.args)?.[1]?.trim().split(/\s+/);
        assert.ok(pkgs?.length, `Dockerfile:${ins.line}: expected an apt-get install of build tools`);
        const q = spawnSync('dpkg-query', ['-W', ...pkgs], { encoding: 'utf8' });
        assert.equal(q.status, 0, `build tools the image installs are missing here: ${q.stderr}`);
      } else if (ins.keyword === 'RUN') {
        const command = runCommand(ins.args);
        const started = Date.now();
        // npm_config_prefer_offline: reuse this machine's npm cache, as the image build reuses its cache mount.
        const r = spawnSync('/bin/sh', ['-c', command], {
          cwd: app,
          encoding: 'utf8',
          timeout: 8 * 60_000,
          maxBuffer: 64 << 20,
          env: { ...cleanEnv(), ...buildEnv, npm_config_prefer_offline: 'true' },
        });
        t.diagnostic(`Dockerfile:${ins.line} RUN ${command.slice(0, 60)}... ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.equal(r.status, 0, `Dockerfile:${ins.line} failed: ${command}\n${(r.stdout + r.stderr).slice(-4000)}`);
      } else if (!['WORKDIR', 'COPY', 'ARG'].includes(ins.keyword) || (ins.keyword === 'COPY' && index > copyAll)) {
        assert.fail(`Dockerfile:${ins.line}: ${ins.keyword} in the build stage is not replayed by this test; teach it`);
      }
    }

    // What the runtime stage copies: built addons without their object files, no tests.
    const leftovers = spawnSync(
      'find',
      ['.', '-path', './node_modules', '-prune', '-o', '-type', 'f', '(', '-name', '*.o', '-o', '-name', '*.test.ts', ')', '-print'],
      { cwd: app, encoding: 'utf8' },
    );
    assert.equal(leftovers.stdout.trim(), '', 'object files or tests left in the runtime tree');
    const addons = spawnSync('find', ['.', '-path', './node_modules', '-prune', '-o', '-name', '*.node', '-print'], {
      cwd: app,
      encoding: 'utf8',
    });
    assert.ok(addons.stdout.trim().length > 0, 'the native addon was built');
    t.diagnostic(`native addons: ${addons.stdout.trim().split('\n').join(', ')}`);

    // Final stage: its ENV, USER and CMD; the port moved to a free one (this machine is shared).
    const final = defaultTarget(stages);
    const runtimeEnv = Object.assign({}, ...instructionsOf(final, 'ENV').map((i) => envPairs(i.args))) as Record<string, string>;
    const port = await freePort();
    const env = { ...cleanEnv(), ...runtimeEnv, BLOCKSERVE_PORT: String(port), HOME: work };
    const cmd = commandArgv(instructionsOf(final, 'CMD').at(-1)!.args);
    const user = instructionsOf(final, 'USER').at(-1)?.args;
    const [uid, gid] = (user ?? '0:0').split(':').map(Number) as [number, number];
    assert.ok(Number.isInteger(uid) && uid > 0, `the image runs as a numeric non-root user (USER ${user})`);
    const asImageUser = process.getuid?.() === 0 ? { uid, gid: gid ?? uid } : {};
    const exe = cmd[0] === 'node' ? process.execPath : cmd[0]!;
    server = spawn(exe, cmd.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'], ...asImageUser });
    server.stdout!.on('data', (d: Buffer) => {
      serverLog += d.toString();
    });
    server.stderr!.on('data', (d: Buffer) => {
      serverLog += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => server!.once('exit', (code) => resolve(code)));
    const base = `http://127.0.0.1:${port}`;

    const started = Date.now();
    await waitFor(`${base}/health`, 200, 120_000, server);
    await waitFor(`${base}/ready`, 200, 180_000, server);
    t.diagnostic(`server ready ${((Date.now() - started) / 1000).toFixed(1)} s after start (as uid ${uid})`);

    // The image's HEALTHCHECK command, run as Docker would (inside the container, same environment).
    const hc = healthcheck(instructionsOf(final, 'HEALTHCHECK').at(-1)!.args);
    const hcRun = spawnSync(hc.argv[0] === 'node' ? process.execPath : hc.argv[0]!, hc.argv.slice(1), {
      cwd: app,
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(hcRun.status, 0, `HEALTHCHECK failed: ${hcRun.stderr}`);

    // The series the autoscaler's adapter rules read exist in the live /metrics output.
    const metrics = await (await waitFor(`${base}/metrics`, 200, 10_000, server)).text();
    const values = parse(readFileSync(join(REPO_ROOT, 'deploy/kubernetes/prometheus-adapter/values.yaml'), 'utf8')) as {
      rules: { custom: { seriesQuery: string }[] };
    };
    for (const rule of values.rules.custom) {
      const series = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rule.seriesQuery)![0];
      assert.match(metrics, new RegExp(`^${series}\\{[^}]*model=`, 'm'), `${series} with a model label in /metrics`);
    }

    // It serves: one short completion on the built-in demo model.
    const completionStart = Date.now();
    const completion = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Hello', max_tokens: 4, temperature: 0 }),
    });
    assert.equal(completion.status, 200, await completion.clone().text());
    const body = (await completion.json()) as { choices: { text: string }[] };
    assert.equal(body.choices.length, 1);
    t.diagnostic(`completion of 4 tokens: ${((Date.now() - completionStart) / 1000).toFixed(1)} s`);

    // STOPSIGNAL: the server drains and exits 0.
    const signal = (instructionsOf(final, 'STOPSIGNAL').at(-1)?.args ?? 'SIGTERM') as NodeJS.Signals;
    const stopStart = Date.now();
    server.kill(signal);
    // Up to the drain grace plus a margin; the timer must not keep the test process alive afterwards.
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), 90_000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(code, 0, `exit after ${signal}; log tail:\n${serverLog.slice(-3000)}`);
    t.diagnostic(`exit 0 ${((Date.now() - stopStart) / 1000).toFixed(1)} s after ${signal}`);
  } catch (err) {
    if (serverLog) t.diagnostic(`server log tail:\n${serverLog.slice(-3000)}`);
    throw err;
  } finally {
    if (server && server.exitCode === null) server.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
});
