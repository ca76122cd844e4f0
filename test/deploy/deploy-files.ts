// Where the deploy files live, for the tests in this folder.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const KUBERNETES_DIR = join(REPO_ROOT, 'deploy', 'kubernetes');

/** Every folder under deploy/kubernetes that holds a kustomization.yaml. */
export function kustomizationDirs(dir = KUBERNETES_DIR): string[] {
  const out: string[] = existsSync(join(dir, 'kustomization.yaml')) ? [dir] : [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...kustomizationDirs(join(dir, entry.name)));
  }
  return out.sort();
}
