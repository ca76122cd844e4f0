// Local stand-ins for the Hub and its CDN (node:http, loopback only), speaking just enough of the real
// API for the downloader: model info, HEAD/GET resolve with X-Repo-Commit / X-Linked-Etag / ETag,
// LFS files redirected to a CDN on another origin that honours Range. Faults are switches on the
// object: cut a response mid-file, corrupt bytes, ignore Range, gate a repo. Every request is logged so
// tests can check what was sent (Range, Authorization).

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  commit: string;
  files: Map<string, Buffer>;
  /** Files served the LFS way (sha256 etag, redirect to the CDN). */
  lfs: Set<string>;
  gated?: boolean;
  /** Revisions (branches/tags) besides the commit itself. */
  refs?: Record<string, string>;
}

export interface LoggedRequest {
  host: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function gitBlobSha1(b: Buffer): string {
  return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly log: LoggedRequest[] = [];
  validToken = 'hf_valid';
  /** Cut (or with stall, go silent on) the next N CDN responses after this many body bytes. */
  cut: { afterBytes: number; times: number; stall?: boolean } | null = null;
  /** Flip a byte in CDN bodies (same length, wrong hash). */
  corrupt = false;
  /** Answer Range requests with the whole file (200), as some servers do. */
  ignoreRange = false;
  /** Answer the next N CDN requests with 503. */
  serverErrors = 0;
  hubUrl = '';
  cdnUrl = '';
  private hub = createServer((q, s) => this.onHub(q, s));
  private cdn = createServer((q, s) => this.onCdn(q, s));
  private blobs = new Map<string, Buffer>();

  async start(): Promise<this> {
    this.hubUrl = await listen(this.hub);
    this.cdnUrl = await listen(this.cdn);
    return this;
  }

  async close(): Promise<void> {
    this.hub.closeAllConnections();
    this.cdn.closeAllConnections();
    await Promise.all([new Promise((r) => this.hub.close(r)), new Promise((r) => this.cdn.close(r))]);
  }

  addRepo(id: string, files: Record<string, Buffer>, opts: { lfs?: string[]; gated?: boolean; commit?: string } = {}): FakeRepo {
    const commit =
      opts.commit ??
      createHash('sha1')
        .update(id + Object.keys(files).join())
        .digest('hex');
    const repo: FakeRepo = {
      commit,
      files: new Map(Object.entries(files)),
      lfs: new Set(opts.lfs ?? Object.keys(files).filter((f) => f.endsWith('.safetensors'))),
      gated: opts.gated,
      refs: { main: commit },
    };
    for (const f of repo.lfs) this.blobs.set(sha256(repo.files.get(f)!), repo.files.get(f)!);
    this.repos.set(id, repo);
    return repo;
  }

  private record(host: 'hub' | 'cdn', q: IncomingMessage): void {
    this.log.push({ host, method: q.method ?? '', path: q.url ?? '', range: q.headers.range, authorization: q.headers.authorization });
  }

  private fail(s: ServerResponse, status: number, code: string, message: string): void {
    s.writeHead(status, { 'x-error-code': code, 'x-error-message': message, 'content-type': 'application/json' });
    s.end(JSON.stringify({ error: message }));
  }

  private onHub(q: IncomingMessage, s: ServerResponse): void {
    this.record('hub', q);
    const url = new URL(q.url ?? '/', this.hubUrl);
    const info = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoId = info?.[1] ?? resolve?.[1];
    const repo = repoId ? this.repos.get(repoId) : undefined;
    // Unauthenticated callers get 401 for unknown repos on the real Hub (it will not confirm a private one exists).
    if (!repo) {
      this.fail(s, q.headers.authorization ? 404 : 401, 'RepoNotFound', 'Repository not found');
      return;
    }
    const revision = decodeURIComponent((info ?? resolve)![2]!);
    const commit = revision === repo.commit ? repo.commit : repo.refs?.[revision];
    if (!commit) {
      this.fail(s, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
      return;
    }
    if (info) {
      s.writeHead(200, { 'content-type': 'application/json' });
      s.end(
        JSON.stringify({
          id: repoId,
          sha: commit,
          gated: repo.gated ? 'auto' : false,
          siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
        }),
      );
      return;
    }
    if (repo.gated && q.headers.authorization !== `Bearer ${this.validToken}`) {
      this.fail(s, q.headers.authorization ? 403 : 401, 'GatedRepo', 'Access to this model is restricted');
      return;
    }
    const file = decodeURIComponent(resolve![3]!);
    const body = repo.files.get(file);
    if (!body) {
      this.fail(s, 404, 'EntryNotFound', `${file} does not exist`);
      return;
    }
    if (repo.lfs.has(file)) {
      const oid = sha256(body);
      s.writeHead(302, {
        location: `${this.cdnUrl}/lfs/${oid}?signature=x`,
        'x-repo-commit': commit,
        'x-linked-etag': `"${oid}"`,
        'x-linked-size': String(body.length),
        etag: `"${gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\n`))}"`,
        'content-length': '0',
      });
      s.end();
      return;
    }
    s.writeHead(200, { 'x-repo-commit': commit, etag: `"${gitBlobSha1(body)}"`, 'content-length': String(body.length) });
    s.end(q.method === 'HEAD' ? undefined : body);
  }

  private onCdn(q: IncomingMessage, s: ServerResponse): void {
    this.record('cdn', q);
    if (this.serverErrors > 0) {
      this.serverErrors--;
      s.writeHead(503).end('busy');
      return;
    }
    const m = /^\/lfs\/([0-9a-f]{64})/.exec(q.url ?? '');
    const blob = m ? this.blobs.get(m[1]!) : undefined;
    if (!blob) {
      s.writeHead(404).end();
      return;
    }
    serveBytes(q, s, blob, this);
  }
}

/** Serves `data` honouring `Range: bytes=N-` (206) unless told to ignore it, with the fault switches. */
export function serveBytes(
  q: IncomingMessage,
  s: ServerResponse,
  data: Buffer,
  faults: { cut: { afterBytes: number; times: number; stall?: boolean } | null; corrupt: boolean; ignoreRange: boolean },
  headers: Record<string, string> = {},
): void {
  let body = data;
  if (faults.corrupt) {
    body = Buffer.from(data);
    body[body.length >> 1] ^= 0xff;
  }
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(q.headers.range ?? '');
  if (range && !faults.ignoreRange) {
    start = Number(range[1]);
    if (start >= body.length) {
      s.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    s.writeHead(206, {
      ...headers,
      'accept-ranges': 'bytes',
      'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      'content-length': String(body.length - start),
    });
  } else {
    s.writeHead(200, { ...headers, 'accept-ranges': 'bytes', 'content-length': String(body.length) });
  }
  const rest = body.subarray(start);
  if (faults.cut && faults.cut.times > 0 && rest.length > faults.cut.afterBytes) {
    faults.cut.times--;
    // Send part of the body, then drop the connection (the client sees a premature close), or with
    // `stall`, keep it open and silent (the client must time out).
    const stall = faults.cut.stall;
    s.write(rest.subarray(0, faults.cut.afterBytes), () => !stall && setTimeout(() => s.socket?.destroy(), 20));
    return;
  }
  s.end(q.method === 'HEAD' ? undefined : rest);
}
