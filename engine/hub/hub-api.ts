// The two Hub endpoints a download needs, and the Hub's errors turned into sentences:
//   GET  {endpoint}/api/models/{repo}/revision/{revision}   -> { sha: commit, siblings: [{ rfilename }] }
//   HEAD {endpoint}/{repo}/resolve/{commit}/{file}           -> X-Repo-Commit, X-Linked-Etag / ETag
//        (sha256 for LFS files, git blob sha1 otherwise), X-Linked-Size / Content-Length, and for LFS
//        files a redirect (Location) to the CDN that serves the bytes.
// The Hub answers an unknown or private repo with 401/404 and X-Error-Code RepoNotFound, a gated one
// with 401/403 and X-Error-Code GatedRepo; huggingface_hub reads the same headers.

import { HubError } from './errors.ts';
import { httpRequest, type HttpAuth, type HttpResponse } from './http.ts';
import type { Digest } from './download.ts';

export interface RepoInfo {
  commit: string;
  files: string[];
}

export interface FileMeta {
  etag: string;
  size?: number;
  /** Where the bytes are (the CDN for LFS files, else the resolve URL itself). */
  url: string;
  digest: Digest;
}

export interface HubClient {
  endpoint: string;
  auth: HttpAuth;
  hasToken: boolean;
}

export function hubClient(endpoint: string, token?: string): HubClient {
  return { endpoint, auth: { token, tokenOrigin: new URL(endpoint).origin }, hasToken: Boolean(token) };
}

async function explain(res: HttpResponse, client: HubClient, repoId: string, what: string): Promise<HubError> {
  const code = res.headers['x-error-code'];
  const serverMsg = res.headers['x-error-message'] ?? (await res.body.text().catch(() => '')).slice(0, 200);
  const page = `${client.endpoint}/${repoId}`;
  if (code === 'GatedRepo') {
    return new HubError(
      client.hasToken
        ? `${repoId} is gated and your HF_TOKEN has no access yet: accept its conditions at ${page} (with the account of that token)`
        : `${repoId} is gated: accept its conditions at ${page}, then set HF_TOKEN to a token of that account`,
      'gated',
    );
  }
  if (code === 'RevisionNotFound') return new HubError(`${repoId} has no revision ${what} (branch, tag or commit)`, 'revision');
  if (code === 'EntryNotFound') return new HubError(`${repoId}: ${what} not found in the repository`, 'not-found');
  if (code === 'RepoNotFound' || res.status === 404) {
    return new HubError(
      `model repository ${repoId} not found on ${client.endpoint}${client.hasToken ? '' : ' (if it is private, set HF_TOKEN)'}`,
      'not-found',
    );
  }
  if (res.status === 401) {
    return new HubError(
      client.hasToken
        ? `the Hub rejected HF_TOKEN for ${repoId}: ${serverMsg}`
        : `${repoId} needs authentication: set HF_TOKEN (${serverMsg})`,
      'auth',
    );
  }
  if (res.status === 403) return new HubError(`access to ${repoId} refused (403): ${serverMsg}`, 'auth');
  if (res.status >= 500) return new HubError(`the Hub failed (${res.status}) on ${what}: ${serverMsg}`, 'network');
  return new HubError(`unexpected HTTP ${res.status} from the Hub on ${what}: ${serverMsg}`);
}

export async function fetchRepoInfo(client: HubClient, repoId: string, revision: string): Promise<RepoInfo> {
  const url = `${client.endpoint}/api/models/${repoId}/revision/${encodeURIComponent(revision)}`;
  const res = await httpRequest(url, { auth: client.auth });
  if (res.status !== 200) throw await explain(res, client, repoId, revision);
  const info = (await res.body.json()) as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha) || !Array.isArray(info.siblings)) {
    throw new HubError(`the Hub's answer for ${repoId}@${revision} has no commit sha or file list (is HF_ENDPOINT a Hub?)`);
  }
  return { commit: info.sha, files: info.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === 'string') };
}

/** Strips the weak-validator prefix and quotes an etag carries in HTTP. */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

export async function fetchFileMeta(client: HubClient, repoId: string, commit: string, file: string): Promise<FileMeta> {
  const resolveUrl = `${client.endpoint}/${repoId}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
  let url = resolveUrl;
  let res: HttpResponse;
  // Relative redirects stay on the Hub (a renamed repo); an absolute one is the CDN holding the bytes.
  for (let hop = 0; ; hop++) {
    res = await httpRequest(url, { method: 'HEAD', auth: client.auth, headers: { 'accept-encoding': 'identity' }, followRedirects: false });
    const loc = res.headers.location;
    if (res.status >= 300 && res.status < 400 && loc?.startsWith('/') && hop < 5) {
      url = new URL(loc, url).href;
      continue;
    }
    break;
  }
  await res.body.dump();
  if (res.status >= 400) throw await explain(res, client, repoId, file);
  const rawEtag = res.headers['x-linked-etag'] ?? res.headers.etag;
  if (!rawEtag) throw new HubError(`the Hub sent no ETag for ${repoId}/${file}; cannot place it in the cache`);
  const etag = normalizeEtag(rawEtag);
  const sizeHeader = Number(res.headers['x-linked-size'] ?? res.headers['content-length']);
  const digest: Digest | undefined = /^[0-9a-f]{64}$/.test(etag)
    ? { algo: 'sha256', hex: etag }
    : /^[0-9a-f]{40}$/.test(etag)
      ? { algo: 'git-sha1', hex: etag }
      : undefined;
  if (!digest)
    throw new HubError(
      `the Hub's ETag for ${repoId}/${file} ('${etag}') is neither a sha256 nor a git blob id; refusing an unverifiable download`,
      'checksum',
    );
  const loc = res.headers.location;
  return {
    etag,
    size: Number.isFinite(sizeHeader) && sizeHeader >= 0 ? sizeHeader : undefined,
    url: res.status >= 300 && res.status < 400 && loc ? new URL(loc, url).href : url,
    digest,
  };
}
