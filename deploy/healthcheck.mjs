// The image's HEALTHCHECK: exits 0 when GET /health answers 200, 1 otherwise. Plain node, because the
// slim base image has no curl or wget. Uses the same port setting the server reads (BLOCKSERVE_PORT).
const port = process.env.BLOCKSERVE_PORT || '8000';
const url = `http://127.0.0.1:${port}/health`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  if (!res.ok) console.error(`healthcheck: ${url} answered ${res.status}`);
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`healthcheck: ${url} failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
