// `blockserve pull ORG/NAME` and `--model ORG/NAME`: the files a GPT-NeoX checkpoint needs, from the Hub
// into the shared huggingface_hub cache, returning the snapshot directory the engine then loads like
// any local model directory. Only safetensors are ever fetched: a repo with pickles only is refused.
//
// Order: repo info (commit + file list) -> config.json first (a model the engine cannot run fails
// before gigabytes move) -> tokenizer.json -> model.safetensors, or the index and then its shards.
// Each file: skipped when the snapshot already links it; linked without download when its blob is
// there (another revision had it); else downloaded to blobs/<etag>.incomplete, verified, renamed.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vanillaSpecFromHf } from '../config/authors.ts';
import { downloadFile, type DownloadOptions } from './download.ts';
import { HubError } from './errors.ts';
import { HfRepoCache } from './hf-cache.ts';
import { fetchFileMeta, fetchRepoInfo, hubClient, type HubClient, type RepoInfo } from './hub-api.ts';
import { withFileLock } from './lock.ts';
import type { HubSettings } from './settings.ts';

export const REPO_ID_RE = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

export interface PulledModel {
  /** Directory holding config.json, tokenizer.json (when the repo has one) and the safetensors. */
  dir: string;
  /** Name to serve it under. */
  name: string;
  commit: string;
}

export interface PullOptions extends Pick<DownloadOptions, 'onProgress' | 'retries' | 'retryDelayMs' | 'freeBytes' | 'stallMs'> {
  revision?: string;
  /** One line per step worth telling a person (resolved commit, cache hits, fallbacks). */
  onLog?: (line: string) => void;
}

const CONFIG = 'config.json';
const TOKENIZER = 'tokenizer.json';
const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';

/** What the engine needs from a repo's file list; throws when there are no safetensors. */
export function weightFilesOf(repoId: string, files: string[]): { config: string; tokenizer?: string; weights: string } {
  if (!files.includes(CONFIG))
    throw new HubError(`${repoId} has no config.json at its top level: not a transformers model repository`, 'not-found');
  const weights = files.includes(SINGLE) ? SINGLE : files.includes(INDEX) ? INDEX : undefined;
  if (!weights) {
    const pickles = files.filter((f) => /\.(bin|pt|pth|ckpt)$/.test(f));
    const other = files.filter((f) => f.endsWith('.safetensors'));
    throw new HubError(
      `${repoId} has no model.safetensors or model.safetensors.index.json` +
        (other.length ? ` (safetensors under other names: ${other.join(', ')})` : '') +
        (pickles.length
          ? `; it only has PyTorch pickle files (${pickles.join(', ')}), which blockserve never loads (unpickling runs code): pick a revision or repo with safetensors`
          : ''),
      'no-safetensors',
    );
  }
  return { config: CONFIG, tokenizer: files.includes(TOKENIZER) ? TOKENIZER : undefined, weights };
}

function shardsOf(indexPath: string, repoId: string): string[] {
  let map: unknown;
  try {
    map = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new HubError(`${repoId}: ${INDEX} is not valid JSON: ${(e as Error).message}`);
  }
  if (!map || typeof map !== 'object') throw new HubError(`${repoId}: ${INDEX} has no weight_map`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  const bad = shards.find((s) => typeof s !== 'string' || s.includes('..') || s.startsWith('/') || !s.endsWith('.safetensors'));
  if (bad !== undefined)
    throw new HubError(`${repoId}: ${INDEX} names a shard that is not a safetensors file in the repo: ${String(bad)}`, 'no-safetensors');
  return shards as string[];
}

/** The snapshot a revision names, when the cache holds everything the engine needs from it. */
export function cachedSnapshot(cache: HfRepoCache, revision: string): { dir: string; commit: string } | undefined {
  const commit = cache.commitFor(revision);
  if (!commit || !cache.hasFile(commit, CONFIG)) return undefined;
  const dir = cache.snapshotDir(commit);
  if (cache.hasFile(commit, SINGLE)) return { dir, commit };
  if (!cache.hasFile(commit, INDEX)) return undefined;
  try {
    return shardsOf(join(dir, INDEX), cache.repoId).every((s) => cache.hasFile(commit, s)) ? { dir, commit } : undefined;
  } catch {
    return undefined;
  }
}

async function fetchIntoCache(client: HubClient, cache: HfRepoCache, commit: string, file: string, opts: PullOptions): Promise<void> {
  if (cache.hasFile(commit, file)) return;
  const meta = await fetchFileMeta(client, cache.repoId, commit, file);
  const waiting = (pid: number) => opts.onLog?.(`${file}: another blockserve (pid ${pid}) is downloading it; waiting`);
  await withFileLock(
    `${cache.incompletePath(meta.etag)}.blockserve-lock`,
    async () => {
      // Checked under the lock: a process we waited for may have just finished this blob.
      if (!existsSync(cache.blobPath(meta.etag))) {
        await downloadFile(
          {
            url: meta.url,
            dest: cache.blobPath(meta.etag),
            partial: cache.incompletePath(meta.etag),
            expectedSize: meta.size,
            digest: meta.digest,
            label: file,
          },
          { ...opts, auth: client.auth },
        );
      } else {
        opts.onLog?.(`${file}: already in the cache (blob ${meta.etag.slice(0, 12)})`);
      }
    },
    waiting,
  );
  await cache.link(commit, file, meta.etag);
}

export async function pullHubModel(repoId: string, settings: HubSettings, opts: PullOptions = {}): Promise<PulledModel> {
  if (!REPO_ID_RE.test(repoId)) throw new HubError(`'${repoId}' is not a Hub model id (expected ORG/NAME, e.g. EleutherAI/pythia-160m)`);
  const revision = opts.revision ?? 'main';
  const cache = new HfRepoCache(settings.hubCache, repoId);
  if (settings.offline) {
    const hit = cachedSnapshot(cache, revision);
    if (!hit) {
      throw new HubError(
        `HF_HUB_OFFLINE=1 and ${repoId} (revision ${revision}) is not complete in the cache ${settings.hubCache}: ` +
          `run \`blockserve pull ${repoId}${revision === 'main' ? '' : ` --revision ${revision}`}\` while online, or unset HF_HUB_OFFLINE`,
        'offline',
      );
    }
    opts.onLog?.(`offline: using ${hit.dir}`);
    return { dir: hit.dir, name: repoId, commit: hit.commit };
  }
  const client = hubClient(settings.endpoint, settings.token);
  let info: RepoInfo;
  try {
    info = await fetchRepoInfo(client, repoId, revision);
  } catch (e) {
    // Like huggingface_hub: when the Hub cannot be reached, a complete cached snapshot still serves.
    const hit = e instanceof HubError && e.reason === 'network' ? cachedSnapshot(cache, revision) : undefined;
    if (!hit) throw e;
    opts.onLog?.(`${(e as Error).message}; using the cached snapshot ${hit.dir}`);
    return { dir: hit.dir, name: repoId, commit: hit.commit };
  }
  const { commit } = info;
  const wanted = weightFilesOf(repoId, info.files);
  opts.onLog?.(`${repoId}@${revision}: commit ${commit}`);
  await fetchIntoCache(client, cache, commit, wanted.config, opts);
  const configTree = JSON.parse(readFileSync(join(cache.snapshotDir(commit), CONFIG), 'utf8')) as Record<string, unknown>;
  if ('model_type' in configTree) {
    try {
      vanillaSpecFromHf(configTree, repoId);
    } catch (e) {
      throw new HubError(`${repoId}: blockserve cannot run this model (${(e as Error).message}); nothing else was downloaded`, 'other');
    }
  }
  if (wanted.tokenizer) await fetchIntoCache(client, cache, commit, wanted.tokenizer, opts);
  else opts.onLog?.(`${repoId} has no tokenizer.json: the built-in GPT-NeoX tokenizer will be used`);
  await fetchIntoCache(client, cache, commit, wanted.weights, opts);
  if (wanted.weights === INDEX) {
    const shards = shardsOf(join(cache.snapshotDir(commit), INDEX), repoId);
    const missing = shards.filter((s) => !info.files.includes(s));
    if (missing.length) throw new HubError(`${repoId}: ${INDEX} names shards the repo does not have: ${missing.join(', ')}`, 'not-found');
    for (const shard of shards) await fetchIntoCache(client, cache, commit, shard, opts);
  }
  await cache.writeRef(revision, commit);
  return { dir: cache.snapshotDir(commit), name: repoId, commit };
}
