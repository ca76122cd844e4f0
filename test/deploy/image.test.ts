// The real image: test/deploy/image-build.sh builds the Dockerfile with buildah (the node:20 base images
// replaced by a stand-in made from Debian packages and this machine's Node, since Docker Hub is not
// reachable here) and runs it: ready, /health, the HEALTHCHECK command, /metrics, SIGTERM -> exit 0.
// Runs where buildah and mmdebstrap are installed and we are root (.ci/setup.d/50-deploy.sh installs them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './deploy-files.ts';

const missing = ['buildah', 'mmdebstrap'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const skip =
  process.getuid?.() !== 0
    ? 'needs root (buildah image storage)'
    : missing.length
      ? `not installed: ${missing.join(', ')} (see .ci/setup.d/50-deploy.sh)`
      : false;

test('container image: buildah builds the Dockerfile and the image serves and drains', { skip, timeout: 20 * 60_000 }, async (t) => {
  const started = Date.now();
  const child = spawn('bash', [join(REPO_ROOT, 'test/deploy/image-build.sh')], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => {
    log += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  // The script's own summary lines (== ...) and results, not the build's chatter.
  for (const line of log.split('\n'))
    if (/^(== |CMD |ready on|\/health|HEALTHCHECK|\/metrics|completion|baked model|server exited|exited non-zero)/.test(line))
      t.diagnostic(line);
  t.diagnostic(`image-build.sh took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  assert.equal(code, 0, `image-build.sh failed:\n${log.slice(-4000)}`);
  assert.match(log, /^image-build\.sh: OK$/m);
});
