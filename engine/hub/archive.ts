// What came down from the authors' host: a zip (their shared folder, or one model's folder), a bare
// model.safetensors, or a web page (an expired link, a login or consent page). Zips are read with
// yauzl (central directory, zip64, entry sizes validated) without loading them into memory; yauzl leaves
// the CRC-32 to its caller, so unpacking checks it (the authors publish no checksum: the zip's CRC is
// the only integrity check their archive carries).

import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { HubError } from './errors.ts';

export type ArchiveKind = 'zip' | 'safetensors' | 'html' | 'unknown';

export async function sniffArchive(path: string): Promise<ArchiveKind> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(16);
    const { bytesRead } = await fh.read(head, 0, 16, 0);
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead >= 9 && head.readBigUInt64LE(0) < 100_000_000n && head[8] === 0x7b /* { */) return 'safetensors';
    if (/^\s*</.test(head.toString('latin1'))) return 'html';
    return 'unknown';
  } finally {
    await fh.close();
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** For each name, the entry <any dirs>/<name>/[checkpoint-<step>/]model.safetensors with the highest step. */
export async function findCheckpoints(
  zipPath: string,
  names: readonly string[],
): Promise<{ found: Map<string, string>; safetensorsEntries: string[] }> {
  const zip = await openZip(zipPath);
  const best = new Map<string, { entry: string; step: number }>();
  const safetensorsEntries: string[] = [];
  const patterns = names.map((n) => [n, new RegExp(`(^|/)${escapeRe(n)}/(checkpoint-(\\d+)/)?model\\.safetensors$`)] as const);
  try {
    for await (const entry of zip.eachEntry()) {
      if (!entry.fileName.endsWith('.safetensors')) continue;
      safetensorsEntries.push(entry.fileName);
      for (const [name, re] of patterns) {
        const m = re.exec(entry.fileName);
        if (!m) continue;
        const step = m[3] === undefined ? -1 : Number(m[3]);
        if (!best.has(name) || best.get(name)!.step < step) best.set(name, { entry: entry.fileName, step });
      }
    }
  } finally {
    zip.close();
  }
  return { found: new Map([...best].map(([n, b]) => [n, b.entry])), safetensorsEntries };
}

export async function extractEntry(zipPath: string, entryName: string, dest: string): Promise<void> {
  const zip = await openZip(zipPath);
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName !== entryName) continue;
      if (entry.isEncrypted()) throw new HubError(`${zipPath}: ${entryName} is encrypted`, 'archive');
      const stream = await zip.openReadStreamPromise(entry);
      let crc = 0;
      const check = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          crc = crc32(chunk, crc);
          cb(null, chunk);
        },
        flush(cb) {
          cb(
            crc >>> 0 === entry.crc32 >>> 0
              ? null
              : new Error(`CRC-32 mismatch (${(crc >>> 0).toString(16)} != ${(entry.crc32 >>> 0).toString(16)})`),
          );
        },
      });
      try {
        await pipeline(stream, check, createWriteStream(dest));
      } catch (e) {
        const err = e as Error & { code?: string };
        if (err.code === 'ENOSPC') throw new HubError(`disk full while unpacking ${entryName} to ${dest}`, 'disk-full');
        throw new HubError(`${zipPath}: ${entryName} is damaged (${err.message}); delete the archive and pull again`, 'archive');
      }
      return;
    }
  } finally {
    zip.close();
  }
  throw new HubError(`${zipPath} has no entry ${entryName}`, 'archive');
}

async function openZip(zipPath: string): Promise<yauzl.ZipFile> {
  try {
    return await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true });
  } catch (e) {
    throw new HubError(`${zipPath} is not a readable zip archive (${(e as Error).message}); delete it and pull again`, 'archive');
  }
}
