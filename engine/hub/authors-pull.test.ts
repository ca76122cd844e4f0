// The authors' checkpoints by name, against local hosts that answer like Dropbox and Google Drive
// (testing/fake-archive-hosts.ts). The tiny fixtures stand in for the released models: the release
// table is injected (names + configs); the real table and links are checked on their own below.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import yazl from 'yazl';
import { resolveModel } from '../resolve.ts';
import { presetSpec } from '../config/presets.ts';
import { authorsDir, pullAuthorsModel, type AuthorsPullOptions } from './authors-pull.ts';
import { AUTHORS_DROPBOX, AUTHORS_GDRIVE, directDownloadUrl, RELEASED_NAMES, releaseByName, type Release } from './authors-releases.ts';
import type { HubSettings } from './settings.ts';
import { FakeArchiveHosts } from './testing/fake-archive-hosts.ts';
import { rejectsWith } from './testing/rejects-with.ts';
import { sha256 } from './testing/fake-hub.ts';

const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const BLOCK = readFileSync(join(FIX, 'block_tiny', 'model.safetensors'));
const BLOCK_OTHER_SEED = readFileSync(join(FIX, 'block_tiny_bf16', 'model.safetensors'));
const VANILLA = readFileSync(join(FIX, 'vanilla_tiny', 'model.safetensors'));
const RELEASES: Record<string, Release> = {
  block_tiny: {
    name: 'block_tiny',
    configFile: 'config.yaml',
    config: parseYaml(readFileSync(join(FIX, 'block_tiny', 'config.yaml'), 'utf8')),
  },
  vanilla_tiny: {
    name: 'vanilla_tiny',
    configFile: 'config.json',
    config: JSON.parse(readFileSync(join(FIX, 'vanilla_tiny', 'config.json'), 'utf8')),
  },
};
const seams: AuthorsPullOptions = { releases: (n) => RELEASES[n], allNames: Object.keys(RELEASES), retryDelayMs: 0 };

async function zipOf(entries: Record<string, Buffer>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  let i = 0;
  for (const [name, data] of Object.entries(entries)) zip.addBuffer(data, name, { compress: i++ % 2 === 1 });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The authors' shared folder: results/<name>/checkpoint-<step>/model.safetensors, two steps of block_tiny. */
const FOLDER = () =>
  zipOf({
    'results/block_tiny/checkpoint-100/model.safetensors': BLOCK_OTHER_SEED,
    'results/block_tiny/checkpoint-200/model.safetensors': BLOCK,
    'results/vanilla_tiny/checkpoint-50/model.safetensors': VANILLA,
    'results/README.txt': Buffer.from('checkpoints'),
  });

function settings(extra: Partial<HubSettings> = {}): HubSettings {
  const root = mkdtempSync(join(tmpdir(), 'bs-authors-'));
  return { endpoint: 'http://127.0.0.1:9', hubCache: join(root, 'hf'), offline: false, blockserveCache: join(root, 'bs'), ...extra };
}

async function withHosts(fn: (h: FakeArchiveHosts) => Promise<void>): Promise<void> {
  const h = await new FakeArchiveHosts().start();
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

test('Dropbox folder (dl=1, redirect, cut mid-archive): latest checkpoint unpacked with its config, loads strictly; the others too', () =>
  withHosts(async (h) => {
    h.files.set('fold1', await FOLDER());
    h.cut = { afterBytes: 400_000, times: 1 };
    const s = settings();
    const logs: string[] = [];
    const got = await pullAuthorsModel('block_tiny', s, { ...seams, links: [h.dropboxLink('fold1', 1)], onLog: (l) => logs.push(l) });
    assert.equal(got.dir, authorsDir(s, 'block_tiny'));
    const ranges = h.log.filter((r) => r.path.startsWith('/zip_download_get')).map((r) => r.range);
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 400_000, `the cut download resumed where it stopped (${ranges[1]})`);
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), sha256(BLOCK), 'the highest checkpoint step');
    assert.deepEqual(parseYaml(readFileSync(join(got.dir, 'config.yaml'), 'utf8')), RELEASES.block_tiny!.config);
    const source = JSON.parse(readFileSync(join(got.dir, 'source.json'), 'utf8'));
    assert.equal(source.entry, 'results/block_tiny/checkpoint-200/model.safetensors');
    assert.equal(source.sha256, sha256(BLOCK));
    const resolved = await resolveModel({ model: got.dir });
    assert.equal(resolved.spec.kind, 'block');
    assert.equal(resolved.spec.name, 'block_tiny');
    const vanillaDir = authorsDir(s, 'vanilla_tiny');
    assert.equal((await resolveModel({ model: vanillaDir })).spec.kind, 'vanilla', 'the other checkpoint in the folder was unpacked too');
    assert.deepEqual(readdirSync(join(s.blockserveCache, 'authors', 'downloads')), [], 'archive deleted, no partial left');
    assert.ok(logs.some((l) => /deleted the downloaded archive/.test(l)));
    // Cached: no request at all the second time.
    h.log.length = 0;
    await pullAuthorsModel('block_tiny', s, { ...seams, links: [h.dropboxLink('fold1', 1)] });
    await pullAuthorsModel('vanilla_tiny', { ...s, offline: true }, seams);
    assert.equal(h.log.length, 0);
  }));

test('an interrupted archive download is resumed by the next run; nothing appears under authors/<name> before', () =>
  withHosts(async (h) => {
    h.files.set('fold2', await FOLDER());
    h.cut = { afterBytes: 300_000, times: 1 };
    const s = settings();
    const opts = { ...seams, links: [h.dropboxLink('fold2', 1)] };
    await rejectsWith(pullAuthorsModel('block_tiny', s, { ...opts, retries: 0 }), 'network', /connection (lost|closed)/);
    assert.ok(!existsSync(authorsDir(s, 'block_tiny')));
    const downloads = join(s.blockserveCache, 'authors', 'downloads');
    const partials = readdirSync(downloads);
    assert.equal(partials.length, 1);
    assert.match(partials[0]!, /\.download\.incomplete$/);
    const kept = statSync(join(downloads, partials[0]!)).size;
    assert.ok(kept > 0 && kept <= 300_000);
    h.log.length = 0;
    await pullAuthorsModel('block_tiny', s, opts);
    assert.deepEqual(
      h.log.filter((r) => r.path.startsWith('/zip_download_get')).map((r) => r.range),
      [`bytes=${kept}-`],
    );
    assert.equal(sha256(readFileSync(join(authorsDir(s, 'block_tiny'), 'model.safetensors'))), sha256(BLOCK));
  }));

test('a server that ignores Range on resume: the archive starts over and still unpacks', () =>
  withHosts(async (h) => {
    h.files.set('fold3', await FOLDER());
    h.cut = { afterBytes: 200_000, times: 1 };
    h.ignoreRange = true;
    const got = await pullAuthorsModel('block_tiny', settings(), { ...seams, links: [h.dropboxLink('fold3', 1)] });
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), sha256(BLOCK));
  }));

test('Google Drive file link: the virus-scan confirm page is followed; a bare model.safetensors is accepted', () =>
  withHosts(async (h) => {
    h.files.set('FILEID', VANILLA);
    const logs: string[] = [];
    const got = await pullAuthorsModel('vanilla_tiny', settings(), { ...seams, url: h.driveLink('FILEID'), onLog: (l) => logs.push(l) });
    assert.ok(logs.some((l) => /confirm/.test(l)));
    assert.ok(h.log.some((r) => r.path.startsWith('/download?') && r.path.includes('confirm=t')));
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), sha256(VANILLA));
    assert.equal((await resolveModel({ model: got.dir })).spec.kind, 'vanilla');
  }));

test('a preview page or expired link, a 404, a corrupt zip: clear errors and nothing cached', () =>
  withHosts(async (h) => {
    h.files.set('fold4', await FOLDER());
    const s = settings();
    await rejectsWith(
      pullAuthorsModel('block_tiny', s, { ...seams, links: [h.dropboxLink('fold4', 0)] }),
      'archive',
      /answered with a web page, not an archive/,
    );
    await rejectsWith(pullAuthorsModel('block_tiny', s, { ...seams, url: `${h.origin}/expired` }), 'archive', /answered with a web page/);
    await rejectsWith(
      pullAuthorsModel('block_tiny', s, { ...seams, links: [h.dropboxLink('missing', 1)] }),
      'not-found',
      /archive: HTTP 404/,
    );
    const folder = await FOLDER();
    h.files.set('truncated', folder.subarray(0, folder.length - 200));
    await rejectsWith(
      pullAuthorsModel('block_tiny', s, { ...seams, links: [h.dropboxLink('truncated', 1)] }),
      'archive',
      /is not a readable zip archive/,
    );
    // One stored entry with a flipped byte in its data: the zip's CRC catches it while unpacking.
    const stored = await zipOf({ 'results/block_tiny/checkpoint-9/model.safetensors': BLOCK });
    stored[stored.indexOf(BLOCK.subarray(0, 64)) + 5000] ^= 0xff;
    h.files.set('flipped', stored);
    await rejectsWith(
      pullAuthorsModel('block_tiny', s, { ...seams, links: [h.dropboxLink('flipped', 1)] }),
      'archive',
      /checkpoint-9\/model\.safetensors is damaged .*crc/i,
    );
    assert.ok(!existsSync(authorsDir(s, 'block_tiny')));
    assert.ok(!existsSync(`${authorsDir(s, 'block_tiny')}.incomplete`));
  }));

test('a checkpoint that does not match its released config is refused, and the download deleted', () =>
  withHosts(async (h) => {
    h.files.set('wrong', await zipOf({ 'results/block_tiny/checkpoint-1/model.safetensors': VANILLA }));
    const s = settings();
    await rejectsWith(
      pullAuthorsModel('block_tiny', s, { ...seams, links: [h.dropboxLink('wrong', 1)] }),
      'archive',
      /block_tiny: the downloaded model\.safetensors does not load strictly.*missing: .*deleted/s,
    );
    assert.ok(!existsSync(authorsDir(s, 'block_tiny')));
    assert.deepEqual(readdirSync(join(s.blockserveCache, 'authors', 'downloads')), []);
  }));

test('an archive without the requested model names what it holds', () =>
  withHosts(async (h) => {
    h.files.set('other', await zipOf({ 'x/vanilla_tiny/model.safetensors': VANILLA }));
    const s = settings();
    await rejectsWith(
      pullAuthorsModel('block_tiny', s, { ...seams, links: [h.dropboxLink('other', 1)] }),
      'archive',
      /has no block_tiny\/…\/model\.safetensors \(safetensors in it: x\/vanilla_tiny\/model\.safetensors; unpacked instead: vanilla_tiny\)/,
    );
    assert.ok(existsSync(join(authorsDir(s, 'vanilla_tiny'), 'model.safetensors')), 'what the archive did hold is kept');
  }));

test('unknown names and offline misses say what to do', async () => {
  await rejectsWith(
    pullAuthorsModel('block_main_b4_7', settings()),
    'not-found',
    /not one of the authors' released checkpoints \(block_main_b4_5, .*vanilla_410\)/,
  );
  await rejectsWith(
    pullAuthorsModel('block_main_b4_85', settings({ offline: true })),
    'offline',
    /HF_HUB_OFFLINE=1 and block_main_b4_85 is not in the cache .*blockserve pull block_main_b4_85/,
  );
});

test("the real release table: every name has its preset config; links are the README's, made direct", () => {
  for (const name of RELEASED_NAMES) {
    const r = releaseByName(name)!;
    assert.ok(r, name);
    assert.equal(presetSpec(name).name, name);
    assert.equal(r.configFile, name.startsWith('block_') ? 'config.yaml' : 'config.json');
  }
  const dl = new URL(directDownloadUrl(AUTHORS_DROPBOX));
  assert.equal(dl.searchParams.get('dl'), '1');
  assert.equal(dl.searchParams.get('rlkey'), 'zn6cqua65wj835kkifbolr4dj');
  assert.equal(dl.pathname, '/scl/fo/7l7ga148gcc39ykdcqndd/AFw4Fk1XbaABFc-IuAzoyQc');
  assert.throws(() => directDownloadUrl(AUTHORS_GDRIVE), /Google Drive folder, which cannot be downloaded outside a browser/);
  assert.equal(
    directDownloadUrl('https://drive.google.com/file/d/1AbC-d_E/view?usp=sharing'),
    'https://drive.google.com/uc?export=download&id=1AbC-d_E',
  );
});

test('a partial archive that is already whole (416, same size) is used; one from an older file (416, other size) starts over', () =>
  withHosts(async (h) => {
    const folder = await FOLDER();
    h.files.set('whole', folder);
    const s = settings();
    const link = h.dropboxLink('whole', 1);
    const downloads = join(s.blockserveCache, 'authors', 'downloads');
    const partial = join(downloads, `${createHash('sha1').update(directDownloadUrl(link)).digest('hex').slice(0, 16)}.download.incomplete`);
    mkdirSync(downloads, { recursive: true });
    writeFileSync(partial, folder);
    await pullAuthorsModel('block_tiny', s, { ...seams, links: [link] });
    assert.deepEqual(
      h.log.filter((r) => r.path.startsWith('/zip_download_get')).map((r) => r.range),
      [`bytes=${folder.length}-`],
    );
    const s2 = settings();
    mkdirSync(join(s2.blockserveCache, 'authors', 'downloads'), { recursive: true });
    writeFileSync(partial.replace(s.blockserveCache, s2.blockserveCache), Buffer.concat([folder, Buffer.alloc(10)]));
    h.log.length = 0;
    const got = await pullAuthorsModel('block_tiny', s2, { ...seams, links: [link] });
    assert.deepEqual(
      h.log.filter((r) => r.path.startsWith('/zip_download_get')).map((r) => r.range),
      [`bytes=${folder.length + 10}-`, undefined],
    );
    assert.equal(sha256(readFileSync(join(got.dir, 'model.safetensors'))), sha256(BLOCK));
  }));
