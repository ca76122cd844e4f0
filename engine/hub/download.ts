// One file from a URL onto disk, the way a person wants it on a slow or flaky line:
//   - bytes go to a partial file that outlives the process; the next attempt (or the next run) asks for
//     the rest with Range and appends, and starts over when the server ignores the range;
//   - a cut connection is retried a few times within the run, resuming each time;
//   - the finished file is checked (size, and sha256 or git's blob sha1 when the source publishes one),
//     and only then renamed onto its final name, so a final name never holds half a file;
//   - a full disk is reported as such (checked up front when the size is known), the partial kept.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, statfs, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HubError } from './errors.ts';
import { httpRequest, type HttpAuth } from './http.ts';

export interface Digest {
  /** sha256 of the content (the Hub's LFS oid), or git's blob id (sha1 of "blob <size>\0" + content). */
  algo: 'sha256' | 'git-sha1';
  hex: string;
}

export interface DownloadJob {
  url: string;
  /** Final path; written only by a rename of the verified partial file. */
  dest: string;
  /** Partial file kept between attempts and runs. */
  partial: string;
  expectedSize?: number;
  digest?: Digest;
  /** What the progress and messages call it (e.g. "model.safetensors"). */
  label: string;
}

export interface DownloadProgress {
  label: string;
  done: number;
  total?: number;
}

export interface DownloadOptions {
  auth?: HttpAuth;
  onProgress?: (p: DownloadProgress) => void;
  /** Extra attempts after a cut connection or a 5xx within this run. */
  retries?: number;
  retryDelayMs?: number;
  /** Milliseconds without a byte before a transfer counts as cut (default 60 s). */
  stallMs?: number;
  /** Free bytes on the file system holding `dir` (injectable for tests). */
  freeBytes?: (dir: string) => Promise<number>;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function defaultFreeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

export async function hashFile(path: string, algo: Digest['algo']): Promise<string> {
  const hash = createHash(algo === 'sha256' ? 'sha256' : 'sha1');
  if (algo === 'git-sha1') hash.update(`blob ${await sizeOf(path)}\0`);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function humanBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** Downloads `job.url` to `job.dest`; returns the number of bytes in the file. */
export async function downloadFile(job: DownloadJob, opts: DownloadOptions = {}): Promise<number> {
  const retries = opts.retries ?? 4;
  await mkdir(dirname(job.partial), { recursive: true });
  await mkdir(dirname(job.dest), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    const before = await sizeOf(job.partial);
    try {
      if (await fetchRest(job, opts)) break;
    } catch (e) {
      const transient = e instanceof HubError && e.reason === 'network';
      if (!transient || attempt >= retries) throw e;
      // The budget is for attempts in a row that got nowhere: a long file on a flaky line keeps going.
      const progressed = (await sizeOf(job.partial)) > before;
      await new Promise((r) => setTimeout(r, (opts.retryDelayMs ?? 500) * (progressed ? 1 : attempt + 1)));
      if (progressed) attempt = -1;
    }
  }
  const size = await sizeOf(job.partial);
  if (job.expectedSize !== undefined && size !== job.expectedSize) {
    await rm(job.partial, { force: true });
    throw new HubError(
      `${job.label}: got ${size} bytes, expected ${job.expectedSize}; the partial file was deleted, run again`,
      'checksum',
    );
  }
  if (job.digest) {
    const got = await hashFile(job.partial, job.digest.algo);
    if (got !== job.digest.hex.toLowerCase()) {
      await rm(job.partial, { force: true });
      throw new HubError(
        `${job.label}: ${job.digest.algo} is ${got} but the source says ${job.digest.hex}; the download was corrupted ` +
          `and has been deleted, run again`,
        'checksum',
      );
    }
  }
  await rename(job.partial, job.dest);
  return size;
}

/** One request for the bytes still missing; true when the partial file is complete. */
async function fetchRest(job: DownloadJob, opts: DownloadOptions): Promise<boolean> {
  let have = await sizeOf(job.partial);
  if (job.expectedSize !== undefined && have > job.expectedSize) {
    await truncate(job.partial, 0);
    have = 0;
  }
  if (job.expectedSize !== undefined && have === job.expectedSize) return true;
  if (job.expectedSize !== undefined) {
    const need = job.expectedSize - have;
    const free = await (opts.freeBytes ?? defaultFreeBytes)(dirname(job.partial));
    if (free < need) {
      throw new HubError(
        `not enough disk space for ${job.label}: needs ${humanBytes(need)} more, ${humanBytes(free)} free in ${dirname(job.partial)}`,
        'disk-full',
      );
    }
  }
  const res = await httpRequest(job.url, { auth: opts.auth, stallMs: opts.stallMs, headers: have > 0 ? { range: `bytes=${have}-` } : {} });
  if (res.status === 416 && have > 0) {
    await res.body.dump();
    // "bytes */TOTAL": complete when we hold exactly TOTAL bytes; otherwise the file changed, start over.
    const total = Number(/^bytes \*\/(\d+)$/.exec(res.headers['content-range'] ?? '')?.[1]);
    if (total === have) return true;
    await truncate(job.partial, 0);
    throw new HubError(`${job.label}: the server's file is no longer the one partly downloaded; starting over`, 'network');
  }
  if (res.status >= 500) {
    await res.body.dump();
    throw new HubError(`${job.label}: server error ${res.status} from ${new URL(res.url).origin}`, 'network');
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body.dump();
    throw new HubError(
      `${job.label}: HTTP ${res.status} from ${res.url}`,
      res.status === 404 ? 'not-found' : res.status === 401 || res.status === 403 ? 'auth' : 'other',
    );
  }
  let append = false;
  if (res.status === 206) {
    const start = Number(/bytes (\d+)-/.exec(res.headers['content-range'] ?? '')?.[1]);
    append = start === have;
    if (!append) {
      await res.body.dump();
      await truncate(job.partial, 0);
      throw new HubError(`${job.label}: server resumed at byte ${start}, not ${have}; starting over`, 'network');
    }
  }
  const base = append ? have : 0;
  const lengthHeader = Number(res.headers['content-length']);
  const total = job.expectedSize ?? (Number.isFinite(lengthHeader) ? base + lengthHeader : undefined);
  let done = base;
  opts.onProgress?.({ label: job.label, done, total });
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      opts.onProgress?.({ label: job.label, done, total });
      cb(null, chunk);
    },
  });
  try {
    await pipeline(res.body, counter, createWriteStream(job.partial, { flags: append ? 'a' : 'w' }));
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ENOSPC') {
      throw new HubError(
        `disk full while writing ${job.label} to ${job.partial} (${done} bytes written, kept for resuming): free some space and run again`,
        'disk-full',
      );
    }
    if (err.code === 'EDQUOT') throw new HubError(`disk quota exceeded while writing ${job.partial}`, 'disk-full');
    if (err.code?.startsWith('E') && !err.code.startsWith('ECONN') && err.code !== 'EPIPE' && err.code !== 'ETIMEDOUT') throw e;
    throw new HubError(
      `${job.label}: connection lost after ${done} bytes (${err.code ?? err.message}); kept ${job.partial} to resume`,
      'network',
    );
  }
  // A body shorter than announced (no error raised) is an interrupted download too.
  if (total !== undefined && done < total) throw new HubError(`${job.label}: connection closed at ${done} of ${total} bytes`, 'network');
  return true;
}
