// Local stand-ins for the hosts of the authors' checkpoints, answering the way they do for a browser-less
// client: a Dropbox shared link with dl=0 is a preview page and with dl=1 a redirect to a download host
// on another origin (which honours Range); a Google Drive uc?export=download link to a large file is a
// "can't scan for viruses" page whose form carries the confirmed link. Fault switches as in fake-hub.ts.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveBytes } from './fake-hub.ts';

export class FakeArchiveHosts {
  /** Content behind each id: a zip of the shared folder, or a single file. */
  readonly files = new Map<string, Buffer>();
  readonly log: { path: string; range?: string }[] = [];
  cut: { afterBytes: number; times: number } | null = null;
  corrupt = false;
  ignoreRange = false;
  origin = '';
  downloadOrigin = '';
  private share = createServer((q, s) => this.onShare(q, s));
  private download = createServer((q, s) => this.onDownload(q, s));

  async start(): Promise<this> {
    for (const [server, set] of [
      [this.share, (u: string) => (this.origin = u)],
      [this.download, (u: string) => (this.downloadOrigin = u)],
    ] as const) {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      set(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
    return this;
  }

  async close(): Promise<void> {
    for (const s of [this.share, this.download]) s.closeAllConnections();
    await Promise.all([this.share, this.download].map((s) => new Promise((r) => s.close(r))));
  }

  dropboxLink(id: string, dl: 0 | 1): string {
    return `${this.origin}/scl/fo/${id}/AAAkey?rlkey=abc&st=x&dl=${dl}`;
  }

  driveLink(id: string): string {
    return `${this.origin}/uc?export=download&id=${id}`;
  }

  private page(s: ServerResponse, html: string): void {
    s.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    s.end(html);
  }

  private onShare(q: IncomingMessage, s: ServerResponse): void {
    this.log.push({ path: q.url ?? '', range: q.headers.range });
    const url = new URL(q.url ?? '/', this.origin);
    const folder = /^\/scl\/fo\/([^/]+)\//.exec(url.pathname);
    if (folder) {
      if (!this.files.has(folder[1]!)) {
        s.writeHead(404).end();
        return;
      }
      if (url.searchParams.get('dl') !== '1') {
        this.page(s, '<!DOCTYPE html><html><body>Dropbox preview</body></html>');
        return;
      }
      s.writeHead(302, { location: `${this.downloadOrigin}/zip_download_get/${folder[1]}?token=t` });
      s.end();
      return;
    }
    if (url.pathname === '/uc' || url.pathname === '/download') {
      const id = url.searchParams.get('id') ?? '';
      if (!this.files.has(id)) {
        s.writeHead(404).end();
        return;
      }
      if (url.searchParams.get('confirm') === 't' && url.searchParams.get('uuid') === 'u-123') {
        serveBytes(q, s, this.files.get(id)!, this);
        return;
      }
      this.page(
        s,
        `<!DOCTYPE html><html><body><p>Google Drive can't scan this file for viruses.</p>` +
          `<form id="download-form" action="${this.origin}/download" method="get">` +
          `<input type="submit" value="Download anyway"/><input type="hidden" name="id" value="${id}">` +
          `<input type="hidden" name="export" value="download"><input type="hidden" name="confirm" value="t">` +
          `<input type="hidden" name="uuid" value="u-123"></form></body></html>`,
      );
      return;
    }
    if (url.pathname === '/expired') {
      this.page(s, '<html><body>This link has expired</body></html>');
      return;
    }
    s.writeHead(404).end();
  }

  private onDownload(q: IncomingMessage, s: ServerResponse): void {
    this.log.push({ path: q.url ?? '', range: q.headers.range });
    const id = /^\/zip_download_get\/([^/?]+)/.exec(q.url ?? '')?.[1];
    const body = id ? this.files.get(id) : undefined;
    if (!body) {
      s.writeHead(404).end();
      return;
    }
    serveBytes(q, s, body, this, { 'content-type': 'application/zip' });
  }
}
