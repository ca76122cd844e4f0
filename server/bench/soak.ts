// Soak: N minutes of mixed traffic against the demo model through the real server (Fastify + the
// engine worker, in this process), to find leaks and rare failures that short tests miss. Not a test.
// Traffic, from --users concurrent virtual users each picking at random: SSE streams read to the end,
// streams aborted at a random chunk, non-streamed completions with n > 1, chat completions, WebSocket
// sessions whose requests are cancelled mid-stream or whose socket is dropped; plus, every
// --burst-every-s, a burst of 3 x capacity concurrent requests that must overflow into 429s.
// Prints RSS and heap every 30 s; at the end the KV pages still in use (must be 0 once idle), the open
// handles, and errors by kind (only 429 is expected).
//
//   node --import tsx server/bench/soak.ts [--minutes 10] [--backend cpu] [--users 12]
//        [--max-num-seqs 8] [--max-queue 16] [--burst-every-s 60] [--seed 1]
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import type { Engine } from '../../engine/api.ts';
import { buildApp } from '../app.ts';
import { defaultConfig } from '../config.ts';

const REPORT_EVERY_MS = 30_000;
const WORDS = 'the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches'.split(' ');

interface Options {
  minutes: number;
  backend: 'cpu' | 'reference' | 'webgpu';
  users: number;
  maxNumSeqs: number;
  maxQueue: number;
  burstEveryS: number;
  seed: number;
}

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '10' },
      backend: { type: 'string', default: 'cpu' },
      users: { type: 'string', default: '12' },
      'max-num-seqs': { type: 'string', default: '8' },
      'max-queue': { type: 'string', default: '16' },
      'burst-every-s': { type: 'string', default: '60' },
      seed: { type: 'string', default: '1' },
    },
  });
  const num = (name: string, v: string, min: number) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min) throw new Error(`--${name} must be a number >= ${min}, got '${v}'`);
    return x;
  };
  const backend = values.backend as Options['backend'];
  if (!['cpu', 'reference', 'webgpu'].includes(backend)) throw new Error(`--backend must be cpu, reference or webgpu, got '${backend}'`);
  return {
    minutes: num('minutes', values.minutes!, 0.05),
    backend,
    users: Math.floor(num('users', values.users!, 1)),
    maxNumSeqs: Math.floor(num('max-num-seqs', values['max-num-seqs']!, 1)),
    maxQueue: Math.floor(num('max-queue', values['max-queue']!, 0)),
    burstEveryS: num('burst-every-s', values['burst-every-s']!, 1),
    seed: Math.floor(num('seed', values.seed!, 0)),
  };
}

/** mulberry32: a seeded generator, so a failing run can be replayed with the same choices. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Tally {
  readonly counts = new Map<string, number>();
  add(kind: string, by = 1): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + by);
  }
  get total(): number {
    let s = 0;
    for (const v of this.counts.values()) s += v;
    return s;
  }
  toString(): string {
    return (
      [...this.counts]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'none'
    );
  }
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

export async function runSoak(argv: string[]): Promise<void> {
  const o = parse(argv);
  const random = rng(o.seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const prompt = () => Array.from({ length: int(3, 40) }, () => pick(WORDS)).join(' ');

  const config = defaultConfig({
    port: 0,
    logLevel: 'silent',
    engine: { backend: o.backend, kvCacheMb: 64, maxNumSeqs: o.maxNumSeqs, maxQueue: o.maxQueue },
  });
  const { createEngine } = await import(new URL('../../engine/create.ts', import.meta.url).href);
  const engine: Engine = await createEngine(config.engine);
  const { app, state } = await buildApp(config);
  state.engine = engine;
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const capacity = engine.limits.maxInFlight;
  console.log(
    `soak: ${o.minutes} min, ${o.users} users, backend ${o.backend}, max-num-seqs ${o.maxNumSeqs}, max-queue ${o.maxQueue} (capacity ${capacity}), model ${engine.info.modelName}`,
  );

  const errors = new Tally(); // anything but a success or our own abort
  const done = new Tally(); // successes and deliberate aborts by scenario
  const deadline = Date.now() + o.minutes * 60_000;

  const post = (path: string, body: object, signal?: AbortSignal) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });

  /** Reads an SSE body; stops after `stopAfter` data frames when given. Returns frames and whether [DONE] came. */
  async function readSse(
    res: Response,
    stopAfter?: number,
    ac?: AbortController,
  ): Promise<{ frames: number; done: boolean; errorCode?: string }> {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let frames = 0;
    let errorCode: string | undefined;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { frames, done: false, errorCode };
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!frame.startsWith('data: ')) continue;
        const data = frame.slice(6);
        if (data === '[DONE]') return { frames, done: true, errorCode };
        frames++;
        // Parsed, not searched: generated text may itself contain the word "error".
        const parsed = JSON.parse(data) as { error?: { code?: string } };
        if (parsed.error) {
          errorCode = parsed.error.code ?? 'unknown';
          console.log(`stream error frame: ${data.slice(0, 300)}`);
        }
        if (stopAfter !== undefined && frames >= stopAfter) {
          ac?.abort();
          await reader.cancel().catch(() => {});
          return { frames, done: false, errorCode };
        }
      }
    }
  }

  async function expectOk(res: Response, what: string): Promise<boolean> {
    if (res.status === 200) return true;
    let code = '';
    try {
      code = (await res.json()).error?.code ?? '';
    } catch {
      /* not JSON */
    }
    errors.add(`${what}:http_${res.status}${code ? `_${code}` : ''}`);
    return false;
  }

  const scenarios: Record<string, () => Promise<void>> = {
    async stream_to_end() {
      const res = await post('/v1/completions', {
        prompt: prompt(),
        max_tokens: int(4, 64),
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      });
      if (!(await expectOk(res, 'stream'))) return;
      const r = await readSse(res);
      if (r.errorCode) errors.add(`stream:event_${r.errorCode}`);
      else if (!r.done) errors.add('stream:no_done');
      else done.add('stream_to_end');
    },
    async stream_aborted() {
      const ac = new AbortController();
      const res = await post('/v1/completions', { prompt: prompt(), max_tokens: 200, ignore_eos: true, stream: true }, ac.signal);
      if (!(await expectOk(res, 'stream_abort'))) return;
      const r = await readSse(res, int(1, 12), ac);
      if (r.errorCode) errors.add(`stream_abort:event_${r.errorCode}`);
      else done.add('stream_aborted');
    },
    async n_choices() {
      const res = await post('/v1/completions', { prompt: prompt(), max_tokens: int(2, 24), n: int(2, 3), temperature: 0.8 });
      if (!(await expectOk(res, 'n'))) return;
      const body = await res.json();
      if (body.choices?.length >= 2) done.add('n_choices');
      else errors.add('n:wrong_choice_count');
    },
    async chat() {
      const res = await post('/v1/chat/completions', { messages: [{ role: 'user', content: prompt() }], max_tokens: int(2, 32) });
      if (!(await expectOk(res, 'chat'))) return;
      await res.json();
      done.add('chat');
    },
    async websocket() {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const dropSocket = random() < 0.3;
      const pending = new Set(['a', 'b']);
      const chunks = new Map<string, number>();
      const finished = new Promise<void>((resolve) => {
        ws.on('message', (data) => {
          const m = JSON.parse(data.toString());
          if (m.type === 'chunk') {
            const c = (chunks.get(m.id) ?? 0) + 1;
            chunks.set(m.id, c);
            if (m.id === 'a' && c === 2) {
              if (dropSocket) {
                ws.terminate();
                resolve();
              } else ws.send(JSON.stringify({ type: 'cancel', id: 'a' }));
            }
          } else if (m.type === 'error') {
            errors.add(`ws:${m.error?.code ?? 'unknown'}`);
          } else if (m.type === 'done') {
            pending.delete(m.id);
            if (pending.size === 0) resolve();
          }
        });
        ws.once('close', () => resolve());
      });
      ws.send(JSON.stringify({ type: 'completion.create', id: 'a', prompt: prompt(), max_tokens: 200, ignore_eos: true }));
      ws.send(
        JSON.stringify({
          type: 'chat.completion.create',
          id: 'b',
          messages: [{ role: 'user', content: prompt() }],
          max_tokens: int(2, 16),
        }),
      );
      await finished;
      if (ws.readyState === ws.OPEN) ws.close();
      done.add(dropSocket ? 'ws_dropped' : 'ws_cancelled');
    },
  };
  const names = Object.keys(scenarios);

  async function user(): Promise<void> {
    while (Date.now() < deadline) {
      const name = pick(names);
      try {
        await scenarios[name]();
      } catch (e) {
        const err = e as Error & { cause?: { code?: string } };
        if (err.name === 'AbortError') done.add(`${name}_aborted_by_us`);
        else errors.add(`${name}:${err.cause?.code ?? err.name}:${err.message.slice(0, 60)}`);
      }
    }
  }

  async function bursts(): Promise<void> {
    while (Date.now() + o.burstEveryS * 1000 < deadline) {
      await new Promise((r) => setTimeout(r, o.burstEveryS * 1000));
      const results = await Promise.all(
        Array.from({ length: 3 * capacity }, async () => {
          try {
            const res = await post('/v1/completions', { prompt: prompt(), max_tokens: int(1, 8) });
            if (res.status === 429 && res.headers.get('retry-after') !== null) {
              await res.text();
              return '429';
            }
            if (!(await expectOk(res, 'burst'))) return 'error';
            await res.json();
            return '200';
          } catch (e) {
            errors.add(`burst:${(e as Error & { cause?: { code?: string } }).cause?.code ?? (e as Error).name}`);
            return 'error';
          }
        }),
      );
      const n429 = results.filter((r) => r === '429').length;
      errors.add('burst:429', n429);
      done.add('burst_200', results.filter((r) => r === '200').length);
    }
  }

  const t0 = Date.now();
  const samples: { s: number; rss: number; heap: number; workerHeap: number }[] = [];
  // The engine's worker thread has its own V8 heap, invisible to process.memoryUsage() here.
  const workerHeap = () => (engine as Engine & { workerHeapUsed?: number }).workerHeapUsed ?? 0;
  const sample = () => {
    const m = process.memoryUsage();
    const st = engine.stats();
    samples.push({ s: (Date.now() - t0) / 1000, rss: m.rss, heap: m.heapUsed, workerHeap: workerHeap() });
    console.log(
      `t=${((Date.now() - t0) / 1000).toFixed(0)}s rss=${mb(m.rss)}MB heapUsed=${mb(m.heapUsed)}MB heapTotal=${mb(m.heapTotal)}MB external=${mb(m.external)}MB engineHeapUsed=${mb(workerHeap())}MB ` +
        `| running=${st.running} waiting=${st.waiting} pages=${st.kvPagesUsed}/${st.kvPagesTotal} | done ${done.total} errors ${errors.total}`,
    );
  };
  sample();
  const reporter = setInterval(sample, REPORT_EVERY_MS);
  await Promise.all([...Array.from({ length: o.users }, () => user()), bursts()]);
  clearInterval(reporter);

  // Idle: every request has ended; the engine must hold nothing.
  const idleBy = Date.now() + 30_000;
  while (
    (engine.stats().running > 0 || engine.stats().waiting > 0 || engine.stats().kvPagesUsed > 0 || state.inFlight.size > 0) &&
    Date.now() < idleBy
  ) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 600)); // one more stats message from the worker
  sample();
  const st = engine.stats();
  const first = samples[1] ?? samples[0];
  const last = samples[samples.length - 1];
  console.log(`\n== soak summary (${((Date.now() - t0) / 60_000).toFixed(1)} min)`);
  console.log(
    `RSS: start ${mb(samples[0].rss)}MB, at ${first.s.toFixed(0)}s ${mb(first.rss)}MB, end ${mb(last.rss)}MB: growth after warm-up ${mb(last.rss - first.rss)}MB`,
  );
  console.log(
    `heapUsed (main thread): at ${first.s.toFixed(0)}s ${mb(first.heap)}MB, end ${mb(last.heap)}MB; engine worker thread: ${mb(first.workerHeap)}MB -> ${mb(last.workerHeap)}MB`,
  );
  const rssAll = samples.map((x) => x.rss);
  console.log(`RSS range over the run: ${mb(Math.min(...rssAll))}-${mb(Math.max(...rssAll))}MB`);
  console.log(
    `KV pages in use when idle: ${st.kvPagesUsed} of ${st.kvPagesTotal}; running ${st.running}, waiting ${st.waiting}, server in flight ${state.inFlight.size}; engine aborts ${st.abortedTotal}, preemptions ${st.preemptedTotal}`,
  );
  console.log(`completed by kind: ${done}`);
  console.log(`errors by kind: ${errors}`);
  const unexpected = [...errors.counts].filter(([k]) => !/(:429|:http_429_rate_limit_exceeded|^ws:rate_limit_exceeded)$/.test(k));
  console.log(`unexpected errors (anything but 429): ${unexpected.length ? unexpected.map(([k, v]) => `${k}=${v}`).join(' ') : 'none'}`);
  const handles = (when: string) => {
    const counts = new Tally();
    for (const r of process.getActiveResourcesInfo()) counts.add(r);
    console.log(`open handles ${when}: ${counts}`);
  };
  handles('before closing the server');
  await app.close();
  await engine.close();
  await new Promise((r) => setTimeout(r, 200));
  handles('after closing the server and engine');
  if (unexpected.length || st.kvPagesUsed !== 0) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runSoak(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
