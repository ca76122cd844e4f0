// WGSL sources live next to their encoders as .wgsl files; static facts (tile sizes, dtype codes,
// flags) are prepended as `const` declarations, so each distinct header is one cached pipeline.

import { readFileSync } from 'node:fs';
import { sourceUrl } from '../assets.ts';

const sources = new Map<string, string>();

export function wgslSource(file: string): string {
  let src = sources.get(file);
  if (src === undefined) {
    src = readFileSync(sourceUrl(`./${file}`, import.meta.url), 'utf8');
    sources.set(file, src);
  }
  return src;
}

/**
 * `const NAME: u32 = 4u;` / `const FLAG = true;` lines for a shader header, plus a stable cache key.
 * `libs` are shared WGSL files appended to the source (WGSL has no includes), e.g. reduce.wgsl.
 */
export function withConsts(
  file: string,
  consts: Record<string, number | boolean>,
  libs: string[] = [],
): { key: string; code: () => string } {
  const entries = Object.entries(consts);
  const key = `${file}?${entries.map(([k, v]) => `${k}=${v}`).join('&')}`;
  const code = () =>
    entries.map(([k, v]) => (typeof v === 'boolean' ? `const ${k} = ${v};` : `const ${k}: u32 = ${v}u;`)).join('\n') +
    '\n' +
    wgslSource(file) +
    libs.map((l) => '\n' + wgslSource(l)).join('');
  return { key, code };
}
