// The HTML reports opened in headless Chromium: every chart is there, drawn (non-empty SVG with
// series marks), and the page needs nothing outside itself.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { runLoadtest } from './main.ts';
import { captureIo } from './testing/capture.ts';
import { spawnFakeServer, type FakeHandle } from './testing/spawn-fake.ts';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const inCi = process.env.CI === 'true';
const skip = !haveChromium && !inCi ? `skipped: ${CHROMIUM} is missing (apt-get install -y chromium)` : false;
if (skip) console.log(`# report.test.ts ${skip}`);

const dir = mkdtempSync(join(tmpdir(), 'lt-report-'));
let fake: FakeHandle;
let browser: Browser | null = null;

before(async () => {
  fake = await spawnFakeServer({ ttftMs: 6, itlMs: 2, slots: 4 });
});
after(async () => {
  await browser?.close();
  await fake.close();
});

async function run(args: string[]): Promise<void> {
  const io = captureIo();
  const code = await runLoadtest(
    ['--url', fake.url, '--input-len', '8', '--output-len', '6', '--scrape-interval', '0.1', '--quiet', ...args],
    io,
  );
  assert.equal(code, 0, io.errText());
}

async function open(file: string) {
  assert.ok(haveChromium, `${CHROMIUM} is required in CI`);
  browser ??= await chromium.launch({
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
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('request', (r) => !r.url().startsWith('file:') && problems.push(`external request ${r.url()}`));
  await page.goto(`file://${file}`);
  const charts = await page.$$eval('figure.chart', (figs) =>
    figs.map((f) => {
      const svg = f.querySelector('svg');
      const box = svg?.getBoundingClientRect();
      return {
        name: f.getAttribute('data-chart') ?? '',
        svgs: f.querySelectorAll('svg').length,
        marks: svg ? svg.querySelectorAll('path.series, g.series circle, rect.bar').length : 0,
        empty: !!svg?.querySelector('text.empty'),
        drawn: !!box && box.width > 100 && box.height > 100,
      };
    }),
  );
  const svgCount = await page.locator('svg').count();
  const title = await page.title();
  await page.close();
  assert.deepEqual(problems, []);
  for (const c of charts) {
    assert.equal(c.svgs, 1, `${c.name}: one svg`);
    assert.ok(c.drawn, `${c.name}: laid out with a real size`);
    assert.ok(!c.empty && c.marks > 0, `${c.name}: has drawn series`);
  }
  return { names: charts.map((c) => c.name), svgCount, title };
}

test('run report: latency CDFs, throughput over time, TTFT scatter, server gauges', { skip }, async () => {
  const html = join(dir, 'run.html');
  await run(['--rate', '100', '--num-requests', '60', '--out', join(dir, 'run.json'), '--html', html, '--label', 'single']);
  assert.doesNotMatch(readFileSync(html, 'utf8'), /<script|src=|href=/, 'self-contained: no scripts or external assets');
  const r = await open(html);
  assert.match(r.title, /single/);
  assert.deepEqual(r.names, [
    'cdf-ttft',
    'cdf-itl',
    'cdf-tpot',
    'cdf-e2e',
    'output-tokens-over-time',
    'requests-over-time',
    'ttft-scatter',
    'metric-fake:num_requests_running{model="fake-model"}',
    'metric-fake:num_requests_waiting{model="fake-model"}',
  ]);
  assert.equal(r.svgCount, 9);
});

test('sweep report adds the saturation curves; compare report draws runs side by side', { skip }, async () => {
  const html = join(dir, 'sweep.html');
  await run([
    '--sweep',
    'concurrency=1,4,16',
    '--num-requests',
    '32',
    '--out',
    join(dir, 'sweep.json'),
    '--html',
    html,
    '--label',
    'sweep',
  ]);
  const r = await open(html);
  assert.deepEqual(r.names.slice(0, 3), ['saturation-throughput', 'saturation-latency', 'saturation-ttft']);
  assert.equal(r.svgCount, 12);

  const cmp = join(dir, 'cmp.html');
  const io = captureIo();
  assert.equal(await runLoadtest(['compare', join(dir, 'run.json'), join(dir, 'sweep.json'), '--html', cmp], io), 0, io.errText());
  const c = await open(cmp);
  assert.deepEqual(c.names, [
    'compare-bars',
    'saturation-throughput',
    'saturation-latency',
    'saturation-ttft',
    'cdf-ttft',
    'cdf-itl',
    'cdf-tpot',
    'cdf-e2e',
    'output-tokens-over-time',
    'requests-over-time',
  ]);
  assert.equal(c.svgCount, 10);
  assert.match(readFileSync(cmp, 'utf8'), /1\. single.*2\. sweep/s);
});
