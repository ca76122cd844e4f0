// .dockerignore semantics, enough for this repository: patterns relative to the context root, `*` and `?`
// within one path segment, `**` across segments, a leading `/` ignored, and a match on a folder excluding
// everything below it. `!` exceptions are refused rather than half-supported.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export function readDockerignore(path: string): RegExp[] {
  return readFileSync(path, 'utf8').split('\n').map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((pattern) => {
      if (pattern.startsWith('!')) throw new Error(`.dockerignore exception '${pattern}' is not supported by test/deploy/dockerignore.ts`);
      return patternToRegExp(pattern);
    });
}

export function patternToRegExp(pattern: string): RegExp {
  const p = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') {
      // `**/` matches zero or more folders; a trailing `**` matches anything.
      if (p[i + 2] === '/') { re += '(?:.*/)?'; i += 2; } else { re += '.*'; i += 1; }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Deletes from `root` what the patterns exclude from a build context; returns the removed paths. */
export function applyDockerignore(root: string, patterns: RegExp[], rel = ''): string[] {
  const removed: string[] = [];
  for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (patterns.some((re) => re.test(path))) {
      rmSync(join(root, path), { recursive: true, force: true });
      removed.push(path);
    } else if (entry.isDirectory()) {
      removed.push(...applyDockerignore(root, patterns, path));
    }
  }
  return removed;
}
