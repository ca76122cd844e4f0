// Where models come from and where they are kept: the Hub's endpoint, token, cache and offline switch,
// and blockserve's own cache for the authors' checkpoints. Built once at the CLI edge from the
// environment (hubSettingsFromEnv) and passed down; nothing under engine/hub reads process.env.
//
// The variables and their defaults are huggingface_hub's, so a cache filled by Python tools is the one
// we read and write:
//   HF_HUB_CACHE  > HF_HOME/hub > XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub
//   HF_TOKEN      > the file HF_TOKEN_PATH > HF_HOME/token (what `huggingface-cli login` writes)
//   HF_ENDPOINT   (default https://huggingface.co), HF_HUB_OFFLINE=1 (cache only)
// Ours: BLOCKSERVE_CACHE > XDG_CACHE_HOME/blockserve > ~/.cache/blockserve (authors' checkpoints).

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HubError } from './errors.ts';

export interface HubSettings {
  /** Base URL of the Hub, no trailing slash. */
  endpoint: string;
  token?: string;
  /** The huggingface_hub cache root (holds models--org--name/). */
  hubCache: string;
  /** Never touch the network; use what the caches hold or fail saying so. */
  offline: boolean;
  /** blockserve's own cache root (authors/<name>/ for the released checkpoints). */
  blockserveCache: string;
}

const TRUE = /^(1|true|yes|on)$/i;

export function hubSettingsFromEnv(env: Record<string, string | undefined>, home: string = homedir()): HubSettings {
  const set = (k: string) => (env[k] !== undefined && env[k] !== '' ? env[k] : undefined);
  const xdgCache = set('XDG_CACHE_HOME') ?? join(home, '.cache');
  const hfHome = set('HF_HOME') ?? join(xdgCache, 'huggingface');
  const endpoint = (set('HF_ENDPOINT') ?? 'https://huggingface.co').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/\s]+/.test(endpoint)) throw new HubError(`HF_ENDPOINT must be an http(s) URL, got '${endpoint}'`);
  let token = set('HF_TOKEN') ?? set('HUGGING_FACE_HUB_TOKEN');
  if (!token) {
    const tokenFile = set('HF_TOKEN_PATH') ?? join(hfHome, 'token');
    if (existsSync(tokenFile)) token = readFileSync(tokenFile, 'utf8').trim() || undefined;
  }
  return Object.freeze({
    endpoint,
    token,
    hubCache: set('HF_HUB_CACHE') ?? set('HUGGINGFACE_HUB_CACHE') ?? join(hfHome, 'hub'),
    offline: TRUE.test(set('HF_HUB_OFFLINE') ?? ''),
    blockserveCache: set('BLOCKSERVE_CACHE') ?? join(xdgCache, 'blockserve'),
  });
}
