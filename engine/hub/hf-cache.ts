// The huggingface_hub cache layout, so Python tools and blockserve share one cache:
//   <hubCache>/models--<org>--<name>/
//     blobs/<etag>                  file contents, named by the Hub's etag (sha256 for LFS files,
//                                   git's blob sha1 for the others); <etag>.incomplete while downloading
//     refs/<revision>               the commit hash a branch or tag pointed at (no trailing newline)
//     snapshots/<commit>/<file>     relative symlink to ../../blobs/<etag>
// Reference: https://huggingface.co/docs/hub/local-cache (read; nothing copied).

import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

export const COMMIT_RE = /^[0-9a-f]{40}$/;

export class HfRepoCache {
  readonly root: string;

  constructor(
    hubCache: string,
    readonly repoId: string,
  ) {
    this.root = join(hubCache, `models--${repoId.replace(/\//g, '--')}`);
  }

  blobPath(etag: string): string {
    return join(this.root, 'blobs', etag);
  }

  /** Where an unfinished download of a blob lives (huggingface_hub resumes the same file). */
  incompletePath(etag: string): string {
    return `${this.blobPath(etag)}.incomplete`;
  }

  snapshotDir(commit: string): string {
    return join(this.root, 'snapshots', commit);
  }

  /** The commit a revision names: itself when it is a commit hash, else what refs/<revision> holds. */
  commitFor(revision: string): string | undefined {
    if (COMMIT_RE.test(revision)) return revision;
    const ref = join(this.root, 'refs', revision);
    if (!existsSync(ref)) return undefined;
    const commit = readFileSync(ref, 'utf8').trim();
    return COMMIT_RE.test(commit) ? commit : undefined;
  }

  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const ref = join(this.root, 'refs', revision);
    await mkdir(dirname(ref), { recursive: true });
    const tmp = `${ref}.${process.pid}.tmp`;
    await writeFile(tmp, commit);
    await rename(tmp, ref);
  }

  /** A complete file in a snapshot: its link exists and resolves to a blob. */
  hasFile(commit: string, file: string): boolean {
    const p = join(this.snapshotDir(commit), file);
    try {
      realpathSync(p);
      return true;
    } catch {
      return false;
    }
  }

  /** Points snapshots/<commit>/<file> at blobs/<etag> with a relative link, replacing any old one atomically. */
  async link(commit: string, file: string, etag: string): Promise<void> {
    const at = join(this.snapshotDir(commit), file);
    await mkdir(dirname(at), { recursive: true });
    const target = relative(dirname(at), this.blobPath(etag));
    const tmp = `${at}.${process.pid}.link`;
    await rm(tmp, { force: true });
    await symlink(target, tmp);
    await rename(tmp, at);
  }
}
