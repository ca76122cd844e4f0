// `blockserve pull block_main_b4_85` (any released name): the authors' published archive from the link
// in their README, unpacked into blockserve's cache as
//   <blockserveCache>/authors/<name>/{model.safetensors, config.yaml | config.json, source.json}
// which `--model <name>` then serves like any local model directory.
//
// The README links a shared *folder* (every checkpoint at once), so one download yields all of them:
// every released checkpoint found in the archive is unpacked and verified, then the archive is deleted.
// Steps, each safe to interrupt: archive -> downloads/<id>.download.incomplete (resumed with Range next
// run) -> downloads/<id>.download -> <name>.incomplete/ (unpacked, config written, loaded strictly by
// the engine's own loader) -> renamed to <name>/. Nothing under <name>/ is ever half written.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { resolveModel } from '../resolve.ts';
import { extractEntry, findCheckpoints, sniffArchive } from './archive.ts';
import { AUTHORS_DROPBOX, AUTHORS_README, directDownloadUrl, RELEASED_NAMES, releaseByName, type Release } from './authors-releases.ts';
import { downloadFile, hashFile, humanBytes, type DownloadOptions } from './download.ts';
import { HubError } from './errors.ts';
import { withFileLock } from './lock.ts';
import type { PulledModel } from './hub-pull.ts';
import type { HubSettings } from './settings.ts';

export interface AuthorsPullOptions extends Pick<DownloadOptions, 'onProgress' | 'retries' | 'retryDelayMs' | 'freeBytes' | 'stallMs'> {
  /** A direct link instead of the README's (a Dropbox / Drive file link, or any URL to a zip or model.safetensors). */
  url?: string;
  onLog?: (line: string) => void;
  /** Seams for tests: the release table, the names looked for in a shared-folder archive, the default links. */
  releases?: (name: string) => Release | undefined;
  allNames?: readonly string[];
  links?: string[];
}

export function authorsDir(settings: HubSettings, name: string): string {
  return join(settings.blockserveCache, 'authors', name);
}

/** The cached directory of a released checkpoint, when it was pulled completely. */
export function cachedAuthorsModel(settings: HubSettings, release: Release): string | undefined {
  const dir = authorsDir(settings, release.name);
  return existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, release.configFile)) ? dir : undefined;
}

/** Google Drive answers large files with a "can't scan for viruses" page whose form holds the real link. */
export function confirmUrlFromPage(html: string, pageUrl: string): string | undefined {
  const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form || !/download/i.test(form[1]!)) return undefined;
  const url = new URL(form[1]!.replace(/&amp;/g, '&'), pageUrl);
  for (const input of form[2]!.matchAll(/<input[^>]*>/gi)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1];
    if (name && value !== undefined && /type="hidden"/i.test(input[0])) url.searchParams.set(name, value);
  }
  return url.href;
}

async function fetchArchive(link: string, downloads: string, opts: AuthorsPullOptions): Promise<string> {
  let url = directDownloadUrl(link);
  const path = join(downloads, `${createHash('sha1').update(url).digest('hex').slice(0, 16)}.download`);
  for (let confirmations = 0; ; confirmations++) {
    if (!existsSync(path)) {
      opts.onLog?.(`downloading ${url}`);
      await downloadFile({ url, dest: path, partial: `${path}.incomplete`, label: 'archive' }, opts);
    }
    if ((await sniffArchive(path)) !== 'html') return path;
    const page = readFileSync(path, 'utf8');
    await rm(path, { force: true });
    const confirmed = confirmUrlFromPage(page, url);
    if (!confirmed || confirmations >= 1) {
      throw new HubError(
        `${link} answered with a web page, not an archive: the link may have expired or need a browser. ` +
          `Download the checkpoint by hand from ${AUTHORS_README} and pass --url with a direct link, or serve the unpacked directory with --model DIR`,
        'archive',
      );
    }
    opts.onLog?.('the host asked to confirm a large download; confirming');
    url = confirmed;
  }
}

async function install(
  release: Release,
  settings: HubSettings,
  writeWeights: (dest: string) => Promise<void>,
  source: Record<string, unknown>,
): Promise<string> {
  const dir = authorsDir(settings, release.name);
  const tmp = `${dir}.incomplete`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const weights = join(tmp, 'model.safetensors');
    await writeWeights(weights);
    await writeFile(
      join(tmp, release.configFile),
      release.configFile === 'config.yaml' ? toYaml(release.config) : JSON.stringify(release.config, null, 2),
    );
    try {
      await resolveModel({ model: tmp });
    } catch (e) {
      throw new HubError(
        `${release.name}: the downloaded model.safetensors does not load strictly with its released config: ${(e as Error).message}`,
        'archive',
      );
    }
    const bytes = (await stat(weights)).size;
    await writeFile(
      join(tmp, 'source.json'),
      JSON.stringify(
        {
          name: release.name,
          readme: AUTHORS_README,
          ...source,
          bytes,
          sha256: await hashFile(weights, 'sha256'),
          pulledAt: new Date().toISOString(),
        },
        null,
        2,
      ),
    );
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return dir;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** A download that does not yield a loadable checkpoint is deleted, so the next run fetches it anew. */
function dropArchive(archive: string): (e: unknown) => Promise<never> {
  return async (e) => {
    await rm(archive, { force: true });
    if (e instanceof HubError) throw new HubError(`${e.message} (the download was deleted; run again to fetch it anew)`, e.reason);
    throw e;
  };
}

export async function pullAuthorsModel(name: string, settings: HubSettings, opts: AuthorsPullOptions = {}): Promise<PulledModel> {
  const lookup = opts.releases ?? releaseByName;
  const release = lookup(name);
  if (!release) throw new HubError(`'${name}' is not one of the authors' released checkpoints (${RELEASED_NAMES.join(', ')})`, 'not-found');
  // One pull of the authors' archive at a time (it unpacks every released name, so one lock for all).
  const lock = join(settings.blockserveCache, 'authors', 'downloads', 'pull.blockserve-lock');
  return withFileLock(
    lock,
    () => pullLocked(name, release, lookup, settings, opts),
    (pid) => opts.onLog?.(`another blockserve (pid ${pid}) is pulling the authors' checkpoints; waiting`),
  );
}

async function pullLocked(
  name: string,
  release: Release,
  lookup: (n: string) => Release | undefined,
  settings: HubSettings,
  opts: AuthorsPullOptions,
): Promise<PulledModel> {
  const cached = cachedAuthorsModel(settings, release);
  if (cached && !opts.url) {
    opts.onLog?.(`${name}: already in the cache at ${cached}`);
    return { dir: cached, name, commit: 'authors' };
  }
  if (settings.offline) {
    throw new HubError(
      `HF_HUB_OFFLINE=1 and ${name} is not in the cache ${authorsDir(settings, name)}: run \`blockserve pull ${name}\` while online`,
      'offline',
    );
  }
  const link = opts.url ?? (opts.links ?? [AUTHORS_DROPBOX])[0]!;
  const downloads = join(settings.blockserveCache, 'authors', 'downloads');
  const archive = await fetchArchive(link, downloads, opts);
  const kind = await sniffArchive(archive);
  let dir!: string;
  if (kind === 'safetensors') {
    dir = await install(release, settings, (dest) => copyFile(archive, dest), { from: link }).catch(dropArchive(archive));
  } else if (kind === 'zip') {
    const names = [name, ...(opts.allNames ?? RELEASED_NAMES).filter((n) => n !== name && lookup(n))];
    const { found, safetensorsEntries } = await findCheckpoints(archive, names).catch(dropArchive(archive));
    const entry = found.get(name);
    if (entry) {
      dir = await install(release, settings, (dest) => extractEntry(archive, entry, dest), { from: link, entry }).catch(
        dropArchive(archive),
      );
      opts.onLog?.(`${name}: ${entry} -> ${dir}`);
    }
    // The download was paid for: every other released checkpoint in it is unpacked too.
    const unpacked: string[] = [];
    for (const [other, otherEntry] of found) {
      if (other === name || cachedAuthorsModel(settings, lookup(other)!)) continue;
      try {
        const at = await install(lookup(other)!, settings, (dest) => extractEntry(archive, otherEntry, dest), {
          from: link,
          entry: otherEntry,
        });
        unpacked.push(other);
        opts.onLog?.(`also in the archive: ${other} -> ${at}`);
      } catch (e) {
        opts.onLog?.(`also in the archive but skipped: ${other}: ${(e as Error).message}`);
      }
    }
    if (!entry) {
      await rm(archive, { force: true });
      throw new HubError(
        `the archive from ${link} has no ${name}/…/model.safetensors (safetensors in it: ${safetensorsEntries.join(', ') || 'none'}` +
          `${unpacked.length ? `; unpacked instead: ${unpacked.join(', ')}` : ''}); the download was deleted`,
        'archive',
      );
    }
  } else {
    await rm(archive, { force: true });
    throw new HubError(`the file from ${link} is neither a zip nor a safetensors file (deleted)`, 'archive');
  }
  const size = (await stat(archive)).size;
  await rm(archive, { force: true });
  opts.onLog?.(`deleted the downloaded archive (${humanBytes(size)})`);
  return { dir, name, commit: 'authors' };
}
