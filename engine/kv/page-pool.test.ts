import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalSlotPool } from './local-slots.ts';
import { PagePool } from './page-pool.ts';
import { PrefixCache } from './prefix-cache.ts';

test('running out of pages is a null, and freed pages come back', () => {
  const pool = new PagePool(3, 16);
  const pages = [pool.allocate(), pool.allocate(), pool.allocate()];
  assert.deepEqual([...pages].sort(), [0, 1, 2]);
  assert.equal(pool.allocate(), null);
  assert.equal(pool.usedPages, 3);
  pool.release(pages[1]!);
  assert.equal(pool.usedPages, 2);
  assert.equal(pool.allocate(), pages[1]);
  pool.release(pages[1]!);
  assert.throws(() => pool.release(pages[1]!), /unreferenced/);
});

test('shared pages are freed only when the last owner releases them', () => {
  const pool = new PagePool(2, 4);
  const p = pool.allocate()!;
  pool.retain(p);
  assert.equal(pool.refs(p), 2);
  pool.release(p);
  assert.equal(pool.usedPages, 1);
  pool.release(p);
  assert.equal(pool.usedPages, 0);
  assert.equal(pool.availablePages, 2);
});

test('cached pages stay findable after release and are evicted least recently released first', () => {
  const pool = new PagePool(3, 1);
  const cache = new PrefixCache(pool, 2); // a page = one entry of 2 tokens
  const tokens = [1, 2, 3, 4, 5, 6];
  const pages = [pool.allocate()!, pool.allocate()!, pool.allocate()!];
  let node = 0;
  for (let j = 0; j < 3; j++) node = cache.offer(pages[j], node, tokens, j);
  // release tail first, as the scheduler does
  for (let j = 2; j >= 0; j--) pool.release(pages[j]);
  assert.equal(pool.usedPages, 0);
  assert.equal(pool.cachedPages, 3);
  assert.deepEqual(cache.match(tokens, 3).pages, pages);
  // the first allocation evicts the deepest page (released first): the prefix root survives
  const fresh = pool.allocate();
  assert.equal(fresh, pages[2]);
  assert.deepEqual(cache.match(tokens, 3).pages, pages.slice(0, 2));
  // a hit revives a cached page: it is no longer evictable
  pool.retain(pages[0]);
  assert.equal(pool.allocate(), pages[1]);
  assert.equal(pool.allocate(), null);
  assert.deepEqual(cache.match(tokens, 3).pages, [pages[0]]);
});

test('a chain key includes the whole prefix: equal pages after different prefixes do not match', () => {
  const pool = new PagePool(4, 1);
  const cache = new PrefixCache(pool, 2);
  const a = [1, 2, 9, 9];
  const b = [3, 4, 9, 9];
  const pa = [pool.allocate()!, pool.allocate()!];
  let node = 0;
  for (let j = 0; j < 2; j++) node = cache.offer(pa[j], node, a, j);
  assert.deepEqual(cache.match(b, 2).pages, []);
  assert.deepEqual(cache.match(a, 2).pages, pa);
  assert.deepEqual(cache.match(a, 1).pages, [pa[0]], 'maxPages caps the hit');
  // offering the same content twice keeps the first page and returns its node
  const dup = pool.allocate()!;
  assert.equal(cache.offer(dup, 0, a, 0), pool.nodeOf(pa[0]));
  pool.release(dup);
  assert.equal(pool.cachedPages, 0, 'the duplicate was not registered, so it is simply free');
});

test('local slots', () => {
  const slots = new LocalSlotPool(2);
  const a = slots.allocate();
  const b = slots.allocate();
  assert.notEqual(a, b);
  assert.equal(slots.allocate(), null);
  slots.release(a!);
  assert.equal(slots.used, 1);
  assert.throws(() => slots.release(a!));
});

test('sequences that grow in lockstep keep their pages contiguous', () => {
  const pool = new PagePool(64, 16);
  const seqs: number[][] = [[], [], [], []];
  // four sequences start one after another, then grow one page each per round (a decode-heavy batch)
  for (const s of seqs) s.push(pool.allocate()!);
  for (let round = 0; round < 12; round++) for (const s of seqs) s.push(pool.allocate(s[s.length - 1])!);
  for (const s of seqs) {
    for (let i = 1; i < s.length; i++) assert.equal(s[i], s[i - 1]! + 1, `pages ${s.join(',')} are not contiguous`);
  }
  assert.equal(new Set(seqs.flat()).size, 52);
});

test('a sequence whose neighbour is in the way continues in the middle of the largest free extent', () => {
  const pool = new PagePool(20, 1);
  const a = pool.allocate()!; // page 0: the whole pool was free
  assert.equal(a, 0);
  const b = pool.allocate()!; // a new sequence: middle of [1, 20)
  assert.equal(b, 10);
  const blocker = pool.allocate(b)!;
  assert.equal(blocker, 11);
  // b's successor is taken: the largest free extent is [1, 10), its middle is 5
  assert.equal(pool.allocate(b), 5);
  // freed pages are reused
  pool.release(a);
  assert.equal(pool.allocate(19), 16); // no page after 19; the largest extent is [12, 20), its middle 16
  assert.equal(pool.availablePages, 20 - 4); // pages 5, 10, 11 and 16 are held
});
