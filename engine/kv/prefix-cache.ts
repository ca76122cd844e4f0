// Prefix caching at page granularity: a page holds `pageSize` KV entries, i.e. pageSize * tokensPerEntry
// tokens (whole blocks for block models), and is the unit of sharing. A full page is keyed by its tokens
// and by the chain node of the page before it, so a key names a whole prefix, not just a page's content.
// Keys are exact strings (no hash collisions to reason about); node ids are never reused, so a key whose
// parent was evicted can no longer be reached from the root and simply ages out of the LRU.
//
// The pages themselves and their reference counts live in PagePool; this class only builds keys, walks
// chains and hands out node ids.
import type { PagePool } from './page-pool.ts';

/** Node id of the empty prefix (the root of every chain). */
export const ROOT_NODE = 0;

export interface PrefixMatch {
  /** Cached pages covering the matched prefix, in order (not yet retained). */
  pages: number[];
  /** Chain node of the last matched page (ROOT_NODE when nothing matched). */
  lastNode: number;
}

export class PrefixCache {
  private nextNode = ROOT_NODE + 1;
  readonly tokensPerPage: number;

  constructor(
    private readonly pool: PagePool,
    tokensPerEntry: number,
  ) {
    this.tokensPerPage = pool.pageSize * tokensPerEntry;
  }

  private key(parentNode: number, tokens: readonly number[], pageIndex: number): string {
    const start = pageIndex * this.tokensPerPage;
    return `${parentNode}|${tokens.slice(start, start + this.tokensPerPage).join(',')}`;
  }

  /** The longest run of cached full pages that prefixes `tokens`, at most `maxPages` long. */
  match(tokens: readonly number[], maxPages: number): PrefixMatch {
    const pages: number[] = [];
    let node = ROOT_NODE;
    const limit = Math.min(maxPages, Math.floor(tokens.length / this.tokensPerPage));
    for (let j = 0; j < limit; j++) {
      const page = this.pool.lookup(this.key(node, tokens, j));
      if (page === undefined) break;
      pages.push(page);
      node = this.pool.nodeOf(page);
    }
    return { pages, lastNode: node };
  }

  /**
   * Offers page `pageIndex` of a sequence (its entries fully computed) to the cache. Returns the chain
   * node for that content: the new node if the page was registered, or the node of the page already
   * cached with the same prefix (this page then stays private and is freed normally).
   */
  offer(page: number, parentNode: number, tokens: readonly number[], pageIndex: number): number {
    const key = this.key(parentNode, tokens, pageIndex);
    const existing = this.pool.lookup(key);
    if (existing !== undefined) return this.pool.nodeOf(existing);
    const node = this.nextNode++;
    if (!this.pool.register(page, key, node)) {
      // The page already carries a key (it was itself a hit): keep its own node.
      return this.pool.nodeOf(page);
    }
    return node;
  }
}
