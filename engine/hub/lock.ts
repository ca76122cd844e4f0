// Two blockserve processes pulling the same file must not append to one partial file. The lock is a
// file created atomically (hard link) holding the owner's pid; a lock whose owner is gone is taken over.
// (huggingface_hub locks .locks/<repo>/<etag>.lock with flock(2), which Node cannot take; a Python
// download running at the same moment as ours is not excluded. Both check the hash before renaming,
// so the worst case is a failed, retryable download, never a wrong file.)

import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, onWait?: (pid: number) => void, pollMs = 500): Promise<T> {
  await mkdir(dirname(lockPath), { recursive: true });
  let told = false;
  for (;;) {
    // Written aside, then hard-linked into place: the lock never exists without its pid in it.
    const tmp = `${lockPath}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    await writeFile(tmp, String(process.pid));
    try {
      await link(tmp, lockPath);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(await readFile(lockPath, 'utf8').catch(() => ''));
      if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
        // Stale (its owner died) or half-written: take it over.
        await rm(lockPath, { force: true });
        continue;
      }
      if (!told) onWait?.(pid);
      told = true;
      await new Promise((r) => setTimeout(r, pollMs));
    } finally {
      await rm(tmp, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}
