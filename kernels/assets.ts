// Files that are not TypeScript (the tokenizer JSON, WGSL shaders, the chat page, models/, the native
// addon) stay in the source tree; the compiled build (dist/, see tsconfig.json) holds only JavaScript.
// A module finds such a file through its own location mapped back to the sources, so the same line
// works from engine/resolve.ts and from dist/engine/resolve.js. It lives in kernels/, the lowest
// layer, so that every layer may use it.

import { fileURLToPath } from 'node:url';

/** The folder above kernels/: the repository root, or <root>/dist/ in the compiled build. */
const OUT_ROOT = new URL('..', import.meta.url).href;
const COMPILED = import.meta.url.endsWith('.js') && OUT_ROOT.endsWith('/dist/');
const SOURCE_ROOT = COMPILED ? new URL('..', OUT_ROOT).href : OUT_ROOT;

/** URL of `relative` (a path relative to the module at `moduleUrl`) in the source tree. */
export function sourceUrl(relative: string, moduleUrl: string): URL {
  const u = new URL(relative, moduleUrl).href;
  return new URL(COMPILED && u.startsWith(OUT_ROOT) ? SOURCE_ROOT + u.slice(OUT_ROOT.length) : u);
}

/** Path of `relative` (to the module at `moduleUrl`) in the source tree. */
export function sourcePath(relative: string, moduleUrl: string): string {
  return fileURLToPath(sourceUrl(relative, moduleUrl));
}
