// Hub downloads against a local fake Hub + CDN (testing/fake-hub.ts): cache layout shared with
// huggingface_hub, resume after a cut, checksum, auth, offline, disk full. No test touches the internet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel } from '../resolve.ts';
import { pullHubModel } from './hub-pull.ts';
import { hubSettingsFromEnv, type HubSettings } from './settings.ts';
import { FakeHub, gitBlobSha1, sha256 } from './testing/fake-hub.ts';
import { rejectsWith } from './testing/rejects-with.ts';

const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const read = (...p: string[]) => readFileSync(join(FIX, ...p));
const TINY = {
  'config.json': read('vanilla_tiny', 'config.json'),
  'tokenizer.json': read('byte-tokenizer', 'tokenizer.json'),
  'model.safetensors': read('vanilla_tiny', 'model.safetensors'),
  'README.md': Buffer.from('# tiny\n'),
};
const WEIGHTS_SHA = sha256(TINY['model.safetensors']);

function settingsFor(hub: FakeHub, extra: Partial<HubSettings> = {}): HubSettings {
  const root = mkdtempSync(join(tmpdir(), 'bs-hub-'));
  return { endpoint: hub.hubUrl, hubCache: join(root, 'hub'), offline: false, blockserveCache: join(root, 'bs'), ...extra };
}

async function withHub(fn: (hub: FakeHub) => Promise<void>): Promise<void> {
  const hub = await new FakeHub().start();
  try {
    await fn(hub);
  } finally {
    await hub.close();
  }
}

const fast = { retryDelayMs: 0 };

test('pull: files land in the huggingface_hub layout and the snapshot loads strictly', () =>
  withHub(async (hub) => {
    const repo = hub.addRepo('EleutherAI/tiny-neox', TINY);
    const settings = settingsFor(hub);
    const progress: number[] = [];
    const got = await pullHubModel('EleutherAI/tiny-neox', settings, {
      ...fast,
      onProgress: (p) => p.label === 'model.safetensors' && progress.push(p.done),
    });
    const root = join(settings.hubCache, 'models--EleutherAI--tiny-neox');
    assert.equal(got.dir, join(root, 'snapshots', repo.commit));
    assert.equal(got.name, 'EleutherAI/tiny-neox');
    assert.equal(readFileSync(join(root, 'refs', 'main'), 'utf8'), repo.commit, 'refs/main holds the commit, no newline');
    const link = join(got.dir, 'model.safetensors');
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readlinkSync(link), join('..', '..', 'blobs', WEIGHTS_SHA), 'relative link to the sha256-named blob');
    assert.equal(
      readlinkSync(join(got.dir, 'config.json')),
      join('..', '..', 'blobs', gitBlobSha1(TINY['config.json'])),
      'non-LFS files are named by git blob id',
    );
    assert.ok(!existsSync(join(got.dir, 'README.md')), 'only what the engine needs is fetched');
    assert.deepEqual(
      readdirSync(join(root, 'blobs')).filter((f) => f.endsWith('.incomplete')),
      [],
    );
    assert.equal(progress.at(-1), TINY['model.safetensors'].length);
    const resolved = await resolveModel({ model: got.dir });
    assert.equal(resolved.spec.kind, 'vanilla');
    assert.ok(resolved.tokenizerPath.startsWith(got.dir));
    // A second pull finds everything in the snapshot: one info request, no file traffic.
    const before = hub.log.length;
    await pullHubModel('EleutherAI/tiny-neox', settings, fast);
    assert.deepEqual(
      hub.log.slice(before).map((r) => r.path),
      ['/api/models/EleutherAI/tiny-neox/revision/main'],
    );
  }));

test('pull: a sharded checkpoint fetches the index, then every shard it names', () =>
  withHub(async (hub) => {
    const dir = join(FIX, 'vanilla_tiny_sharded');
    const files: Record<string, Buffer> = { 'config.json': read('vanilla_tiny_sharded', 'config.json') };
    for (const f of readdirSync(dir).filter((f) => f.startsWith('model'))) files[f] = readFileSync(join(dir, f));
    hub.addRepo('org/sharded', files);
    const got = await pullHubModel('org/sharded', settingsFor(hub), fast);
    for (const f of Object.keys(files)) assert.ok(existsSync(join(got.dir, f)), f);
    const resolved = await resolveModel({ model: got.dir });
    assert.equal(resolved.spec.kind, 'vanilla');
  }));

test('pull: the token goes to the Hub only, never to the CDN; a revision is resolved and recorded in refs/', () =>
  withHub(async (hub) => {
    const repo = hub.addRepo('org/gated', TINY, { gated: true });
    repo.refs!['v1.0'] = repo.commit;
    const settings = settingsFor(hub);
    await rejectsWith(
      pullHubModel('org/gated', settings, fast),
      'gated',
      /org\/gated is gated: accept its conditions at http.*\/org\/gated, then set HF_TOKEN/,
    );
    await rejectsWith(pullHubModel('org/gated', { ...settings, token: 'hf_wrong' }, fast), 'gated', /your HF_TOKEN has no access/);
    hub.log.length = 0;
    await pullHubModel('org/gated', { ...settings, token: hub.validToken }, { ...fast, revision: 'v1.0' });
    assert.ok(hub.log.filter((r) => r.host === 'hub').every((r) => r.authorization === `Bearer ${hub.validToken}`));
    const cdn = hub.log.filter((r) => r.host === 'cdn');
    assert.ok(cdn.length > 0);
    assert.ok(
      cdn.every((r) => r.authorization === undefined),
      'no Authorization header on the CDN',
    );
    assert.equal(readFileSync(join(settings.hubCache, 'models--org--gated', 'refs', 'v1.0'), 'utf8'), repo.commit);
    await rejectsWith(
      pullHubModel('org/gated', { ...settings, token: hub.validToken }, { ...fast, revision: 'nope' }),
      'revision',
      /has no revision nope/,
    );
  }));

test('pull: unknown repo (401 unauthenticated, 404 with a token) says not found', () =>
  withHub(async (hub) => {
    await rejectsWith(
      pullHubModel('nobody/nothing', settingsFor(hub), fast),
      'not-found',
      /model repository nobody\/nothing not found on http:\/\/127\.0\.0\.1:\d+ \(if it is private, set HF_TOKEN\)/,
    );
    await rejectsWith(pullHubModel('nobody/nothing', settingsFor(hub, { token: 'x' }), fast), 'not-found', /nobody\/nothing not found/);
    await rejectsWith(pullHubModel('not-an-id', settingsFor(hub), fast), 'other', /not a Hub model id \(expected ORG\/NAME/);
  }));

test('pull: a repo with pickles only is refused before any weight is fetched', () =>
  withHub(async (hub) => {
    hub.addRepo(
      'org/pickles',
      { 'config.json': TINY['config.json'], 'pytorch_model.bin': Buffer.alloc(64) },
      { lfs: ['pytorch_model.bin'] },
    );
    await rejectsWith(
      pullHubModel('org/pickles', settingsFor(hub), fast),
      'no-safetensors',
      /no model\.safetensors.*only has PyTorch pickle files \(pytorch_model\.bin\), which blockserve never loads/,
    );
    assert.ok(!hub.log.some((r) => r.path.includes('pytorch_model.bin')));
  }));

test('pull: a model the engine cannot run fails after config.json, before the weights', () =>
  withHub(async (hub) => {
    hub.addRepo('org/llama', { ...TINY, 'config.json': Buffer.from(JSON.stringify({ model_type: 'llama' })) });
    await rejectsWith(
      pullHubModel('org/llama', settingsFor(hub), fast),
      'other',
      /model_type 'llama' is not supported.*nothing else was downloaded/,
    );
    assert.ok(!hub.log.some((r) => r.host === 'cdn'));
  }));

test('pull: a connection cut mid-file is resumed with Range within the run', () =>
  withHub(async (hub) => {
    hub.addRepo('org/cut', TINY);
    hub.cut = { afterBytes: 100_000, times: 2 };
    const got = await pullHubModel('org/cut', settingsFor(hub), fast);
    // Each retry asks for the rest from what reached the disk (at most what was sent before the cut).
    const starts = hub.log.filter((r) => r.host === 'cdn').map((r) => (r.range ? Number(/^bytes=(\d+)-$/.exec(r.range)?.[1]) : 0));
    assert.equal(starts.length, 3);
    assert.equal(starts[0], 0);
    assert.ok(starts[1]! > 0 && starts[1]! <= 100_000 && starts[2]! > starts[1]! && starts[2]! <= starts[1]! + 100_000, String(starts));
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), WEIGHTS_SHA);
  }));

test('pull: an interrupted run leaves only blobs/<etag>.incomplete; the next run resumes it', () =>
  withHub(async (hub) => {
    hub.addRepo('org/resume', TINY);
    const settings = settingsFor(hub);
    hub.cut = { afterBytes: 300_000, times: 1 };
    await rejectsWith(pullHubModel('org/resume', settings, { ...fast, retries: 0 }), 'network', /connection (lost|closed)/);
    const root = join(settings.hubCache, 'models--org--resume');
    const partial = join(root, 'blobs', `${WEIGHTS_SHA}.incomplete`);
    const kept = statSync(partial).size;
    assert.ok(kept > 0 && kept <= 300_000, String(kept));
    assert.ok(!existsSync(join(root, 'blobs', WEIGHTS_SHA)));
    const commit = hub.repos.get('org/resume')!.commit;
    assert.ok(!existsSync(join(root, 'snapshots', commit, 'model.safetensors')), 'no half file in snapshots/');
    assert.ok(!existsSync(join(root, 'refs', 'main')));
    hub.log.length = 0;
    const got = await pullHubModel('org/resume', settings, fast);
    assert.deepEqual(
      hub.log.filter((r) => r.host === 'cdn').map((r) => r.range),
      [`bytes=${kept}-`],
    );
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), WEIGHTS_SHA);
    assert.ok(!existsSync(partial));
  }));

test('pull: a server that ignores Range restarts the file from zero, correctly', () =>
  withHub(async (hub) => {
    hub.addRepo('org/norange', TINY);
    hub.cut = { afterBytes: 50_000, times: 1 };
    hub.ignoreRange = true;
    const got = await pullHubModel('org/norange', settingsFor(hub), fast);
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), WEIGHTS_SHA);
  }));

test('pull: a wrong checksum deletes the download and links nothing', () =>
  withHub(async (hub) => {
    hub.addRepo('org/corrupt', TINY);
    hub.corrupt = true;
    const settings = settingsFor(hub);
    await rejectsWith(
      pullHubModel('org/corrupt', settings, fast),
      'checksum',
      new RegExp(`model\\.safetensors: sha256 is [0-9a-f]{64} but the source says ${WEIGHTS_SHA}`),
    );
    const root = join(settings.hubCache, 'models--org--corrupt');
    assert.deepEqual(
      readdirSync(join(root, 'blobs')).filter((f) => f.startsWith(WEIGHTS_SHA)),
      [],
    );
    assert.ok(!existsSync(join(root, 'snapshots', hub.repos.get('org/corrupt')!.commit, 'model.safetensors')));
    hub.corrupt = false;
    await pullHubModel('org/corrupt', settings, fast);
  }));

test('pull: disk full, predicted from free space and hit for real (ENOSPC via /dev/full)', () =>
  withHub(async (hub) => {
    hub.addRepo('org/big', TINY);
    await rejectsWith(
      pullHubModel('org/big', settingsFor(hub), { ...fast, freeBytes: async () => 100_000 }),
      'disk-full',
      /not enough disk space for model\.safetensors: needs 0\.6 MiB more, 0\.1 MiB free in .*blobs/,
    );
    if (!existsSync('/dev/full')) return;
    const settings = settingsFor(hub);
    const blobs = join(settings.hubCache, 'models--org--big', 'blobs');
    mkdirSync(blobs, { recursive: true });
    symlinkSync('/dev/full', join(blobs, `${WEIGHTS_SHA}.incomplete`));
    await rejectsWith(pullHubModel('org/big', settings, fast), 'disk-full', /disk full while writing model\.safetensors/);
  }));

test('offline: the cache serves without a request; a miss says what to run', () =>
  withHub(async (hub) => {
    hub.addRepo('org/off', TINY);
    const settings = settingsFor(hub);
    await rejectsWith(
      pullHubModel('org/off', { ...settings, offline: true }),
      'offline',
      /HF_HUB_OFFLINE=1 and org\/off \(revision main\) is not complete in the cache .*run `blockserve pull org\/off`/,
    );
    const online = await pullHubModel('org/off', settings, fast);
    hub.log.length = 0;
    const offline = await pullHubModel('org/off', { ...settings, offline: true });
    assert.equal(offline.dir, online.dir);
    assert.equal(hub.log.length, 0, 'offline mode sent no request');
    // The Hub unreachable (endpoint on a closed port): the complete cached snapshot is used.
    const down = await pullHubModel('org/off', { ...settings, endpoint: 'http://127.0.0.1:9' }, fast);
    assert.equal(down.dir, online.dir);
    await rejectsWith(
      pullHubModel('org/other', { ...settings, endpoint: 'http://127.0.0.1:9' }, fast),
      'network',
      /cannot reach http:\/\/127\.0\.0\.1:9/,
    );
  }));

test('a cache laid out by huggingface_hub (blobs + relative links + refs) is reused, online and offline', () =>
  withHub(async (hub) => {
    const repo = hub.addRepo('org/py', TINY);
    const settings = settingsFor(hub);
    // Written the way huggingface_hub writes it, without our code.
    const root = join(settings.hubCache, 'models--org--py');
    const snap = join(root, 'snapshots', repo.commit);
    mkdirSync(join(root, 'blobs'), { recursive: true });
    mkdirSync(snap, { recursive: true });
    mkdirSync(join(root, 'refs'));
    writeFileSync(join(root, 'refs', 'main'), repo.commit);
    for (const [name, body] of Object.entries(TINY)) {
      const etag = name.endsWith('.safetensors') ? sha256(body) : gitBlobSha1(body);
      writeFileSync(join(root, 'blobs', etag), body);
      symlinkSync(join('..', '..', 'blobs', etag), join(snap, name));
    }
    const offline = await pullHubModel('org/py', { ...settings, offline: true });
    assert.equal(offline.dir, snap);
    await pullHubModel('org/py', settings, fast);
    assert.ok(
      !hub.log.some((r) => r.method === 'GET' && r.path.includes('/resolve/')) && !hub.log.some((r) => r.host === 'cdn'),
      'nothing downloaded again',
    );
    await resolveModel({ model: snap });
  }));

test('settings: the huggingface_hub variables and precedence, read once from a given env', () => {
  const home = mkdtempSync(join(tmpdir(), 'bs-home-'));
  const d = hubSettingsFromEnv({}, home);
  assert.equal(d.hubCache, join(home, '.cache', 'huggingface', 'hub'));
  assert.equal(d.endpoint, 'https://huggingface.co');
  assert.equal(d.offline, false);
  assert.equal(d.token, undefined);
  assert.equal(d.blockserveCache, join(home, '.cache', 'blockserve'));
  mkdirSync(join(home, 'hf'));
  writeFileSync(join(home, 'hf', 'token'), 'hf_fromfile\n');
  const e = hubSettingsFromEnv({ HF_HOME: join(home, 'hf'), HF_ENDPOINT: 'http://mirror.local/', HF_HUB_OFFLINE: '1' }, home);
  assert.equal(e.hubCache, join(home, 'hf', 'hub'));
  assert.equal(e.token, 'hf_fromfile');
  assert.equal(e.endpoint, 'http://mirror.local');
  assert.equal(e.offline, true);
  const f = hubSettingsFromEnv({ HF_HOME: join(home, 'hf'), HF_HUB_CACHE: '/x/cache', HF_TOKEN: 'hf_env', BLOCKSERVE_CACHE: '/y' }, home);
  assert.equal(f.hubCache, '/x/cache');
  assert.equal(f.token, 'hf_env');
  assert.equal(f.blockserveCache, '/y');
  assert.throws(() => hubSettingsFromEnv({ HF_ENDPOINT: 'huggingface.co' }, home), /HF_ENDPOINT must be an http\(s\) URL/);
});

test("two pulls of one file: the second waits for the first (lock with its pid), a dead owner's lock is taken over", () =>
  withHub(async (hub) => {
    hub.addRepo('org/lock', TINY);
    const settings = settingsFor(hub);
    const blobs = join(settings.hubCache, 'models--org--lock', 'blobs');
    mkdirSync(blobs, { recursive: true });
    const lock = join(blobs, `${WEIGHTS_SHA}.incomplete.blockserve-lock`);
    // A live foreign owner: a child process; the pull waits until it is gone.
    const owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    writeFileSync(lock, String(owner.pid));
    const logs: string[] = [];
    const pulling = pullHubModel('org/lock', settings, { ...fast, onLog: (l) => logs.push(l) });
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(
      logs.some((l) => l.includes(`another blockserve (pid ${owner.pid}) is downloading it; waiting`)),
      logs.join('\n'),
    );
    assert.ok(!hub.log.some((r) => r.host === 'cdn'), 'nothing downloaded while the lock is held');
    owner.kill();
    await pulling;
    assert.ok(!existsSync(lock));
    // Concurrent pulls in one process share the download: one transfer of the weights.
    const other = settingsFor(hub);
    hub.log.length = 0;
    await Promise.all([pullHubModel('org/lock', other, fast), pullHubModel('org/lock', other, fast)]);
    assert.equal(hub.log.filter((r) => r.host === 'cdn').length, 1);
  }));

test('pull: a CDN answering 503 is retried; past the retries the error names the server', () =>
  withHub(async (hub) => {
    hub.addRepo('org/busy', TINY);
    hub.serverErrors = 2;
    const got = await pullHubModel('org/busy', settingsFor(hub), fast);
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), WEIGHTS_SHA);
    hub.serverErrors = 5;
    await rejectsWith(
      pullHubModel('org/busy', settingsFor(hub), { ...fast, retries: 1 }),
      'network',
      /model\.safetensors: server error 503 from http:\/\/127\.0\.0\.1:\d+/,
    );
  }));

test('pull: a transfer that goes silent mid-file times out and resumes', () =>
  withHub(async (hub) => {
    hub.addRepo('org/stall', TINY);
    hub.cut = { afterBytes: 200_000, times: 1, stall: true };
    const got = await pullHubModel('org/stall', settingsFor(hub), { ...fast, stallMs: 300 });
    const ranges = hub.log.filter((r) => r.host === 'cdn').map((r) => r.range);
    assert.equal(ranges.length, 2);
    assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), WEIGHTS_SHA);
  }));

test('pull: the retry budget counts attempts in a row without progress, so many cuts that each move forward still finish', () =>
  withHub(async (hub) => {
    hub.addRepo('org/flaky', TINY);
    hub.cut = { afterBytes: 60_000, times: 8 };
    const got = await pullHubModel('org/flaky', settingsFor(hub), { ...fast, retries: 1 });
    assert.ok(hub.log.filter((r) => r.host === 'cdn').length >= 9);
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), WEIGHTS_SHA);
  }));
