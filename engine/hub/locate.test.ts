// `--model` classification: which of path, released name or Hub id a string is, and the flags that go with each.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyModel, locateModel } from './locate.ts';

test('classifyModel: existing path, then released name, then ORG/NAME; anything else stays a path', () => {
  const none = () => false;
  assert.equal(classifyModel('EleutherAI/pythia-160m', none), 'hub');
  assert.equal(
    classifyModel('EleutherAI/pythia-160m', () => true),
    'path',
    'a local directory named like a Hub id wins',
  );
  assert.equal(classifyModel('block_main_b4_85', none), 'authors');
  assert.equal(classifyModel('block_main_b4_1.2b', none), 'authors');
  assert.equal(classifyModel('vanilla_160', none), 'authors');
  assert.equal(classifyModel('block_main_b4_7', none), 'path');
  assert.equal(classifyModel('/abs/dir', none), 'path');
  assert.equal(classifyModel('./rel/dir', none), 'path');
  assert.equal(classifyModel('a/b/c', none), 'path');
});

test('locateModel: paths pass through; --revision and --url only where they mean something', async () => {
  const settings = {
    endpoint: 'http://127.0.0.1:9',
    hubCache: mkdtempSync(join(tmpdir(), 'bs-loc-')),
    offline: true,
    blockserveCache: '/nonexistent',
  };
  assert.deepEqual(await locateModel('/some/dir', settings), { path: '/some/dir' });
  await assert.rejects(
    locateModel('/some/dir', settings, { revision: 'v1' }),
    /--revision applies to Hugging Face Hub ids \(ORG\/NAME\) only, not to '\/some\/dir'/,
  );
  await assert.rejects(locateModel('org/name', settings, { url: 'http://x' }), /--url applies to the authors' released names only/);
  await assert.rejects(locateModel('org/name', { ...settings, offline: false }), /cannot reach http:\/\/127\.0\.0\.1:9/);
});
