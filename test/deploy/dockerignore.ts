// .dockerignore semantics, enough for this repository: patterns relative to the context root, `*` and `?`
// within one path segment, `**` across segments, a leading `/` ignored, a match on a folder excluding
// everything below it, and `!` exceptions where the last matching line wins (Docker's rule).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export type IgnoreRule = { re: RegExp; exception: boolean; pattern: string };

export function readDockerignore(path: string): IgnoreRule[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => {
      const exception = line.startsWith('!');
      const pattern = exception ? line.slice(1).trim() : line;
      return { re: patternToRegExp(pattern), exception, pattern: pattern.replace(/^\/+/, '').replace(/\/+$/, '') };
    });
}

export function patternToRegExp(pattern: string): RegExp {
  const p = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') {
      // `**/` matches zero or more folders; a trailing `**` matches anything.
      if (p[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Whether a path (relative, `/`-separated) is left out of the context: the last matching rule decides. */
export function isExcluded(path: string, rules: IgnoreRule[], parentExcluded = false): boolean {
  let excluded = parentExcluded;
  for (const rule of rules) if (rule.re.test(path)) excluded = !rule.exception;
  return excluded;
}

/** Deletes from `root` what the rules exclude from a build context; returns the removed paths. */
export function applyDockerignore(root: string, rules: IgnoreRule[], rel = '', parentExcluded = false): string[] {
  const removed: string[] = [];
  for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    const excluded = isExcluded(path, rules, parentExcluded);
    // An excluded folder may still hold re-included paths: look inside when an exception points below it.
    const exceptionBelow = rules.some((r) => r.exception && r.pattern.startsWith(`${path}/`));
    if (entry.isDirectory() && (exceptionBelow || !excluded)) {
      removed.push(...applyDockerignore(root, rules, path, excluded));
    } else if (excluded) {
      rmSync(join(root, path), { recursive: true, force: true });
      removed.push(path);
    }
  }
  return removed;
}
