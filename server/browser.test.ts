// The demo page at / in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core, no
// browser download): it connects over the WebSocket, sends a chat turn and shows the streamed reply.
// Required in CI; on a machine without chromium it is skipped with the reason printed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startTestServer, type TestServer } from './testing/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const inCi = process.env.CI === 'true';
const skip = !existsSync(CHROMIUM) && !inCi ? `${CHROMIUM} is missing (apt-get install -y chromium)` : false;
if (skip) console.log(`# browser.test.ts skipped: ${skip}`);

const REPLY = 'Streaming into the page, token by token.';

let browser: Browser | undefined;
let server: TestServer | undefined;
after(async () => {
  await browser?.close();
  await server?.close();
});

test('the page at / streams a chat reply over the WebSocket', { skip }, async () => {
  // 15 ms per token: the reply takes ~0.6 s, long enough to see it arrive in pieces.
  server = await startTestServer({ reply: REPLY, tokenIntervalMs: 15, demo: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'connected');
  assert.match((await page.textContent('#model')) ?? '', /fake-model/);
  assert.equal(await page.isVisible('#demo'), true, 'the demo model is flagged on the page');

  await page.fill('#input', 'Hello there');
  await page.click('#send');
  // Sample the reply while it streams: it must grow through intermediate lengths, not appear at once.
  const seen = new Set<number>();
  const t0 = Date.now();
  while (Date.now() - t0 < 10_000) {
    const text = (await page.textContent('.turn.assistant .text')) ?? '';
    seen.add(text.length);
    if ((await page.getAttribute('body', 'data-state')) === 'idle' && text.length) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(await page.textContent('.turn.assistant .text'), REPLY);
  assert.ok(
    [...seen].some((n) => n > 0 && n < REPLY.length),
    `saw partial replies: ${[...seen].join(',')}`,
  );
  assert.match((await page.textContent('.turn.assistant .meta')) ?? '', /finish: stop/);
  assert.deepEqual(errors, []);
  assert.equal(server.engine.submitted.length, 1);
});
