// HTTP overhead benchmark: output tokens/s of N concurrent requests submitted to the engine directly
// versus the same requests as N concurrent SSE streams through the server, same engine, same run,
// rounds alternated (engine, http, engine, http, ...) so drift hits both; medians printed.
//
//   node --import tsx server/bench/http-overhead.ts [--backend cpu] [--concurrency 64] [--max-tokens 64]
//        [--prompt-tokens 16] [--rounds 3] [--model DIR | --preset NAME] [--fake]
//        [--compute-dtype f32|bf16|auto (default auto)] [--kv-dtype f32|bf16] [--ttft-requests 9] [--help]
//
// Then the idle server's time to first token: --ttft-requests streamed requests one after another
// (nothing else running), time from sending the request to the first content chunk; p50 printed.
// The setting: --preset block_main_b4_85 --concurrency 64 --prompt-tokens 128 --max-tokens 512.
//
// --fake uses the scripted fake engine at full speed instead: the ratio is then meaningless, but the
// HTTP figure is the server's own ceiling (chunks/s it can render and write).
import { BACKEND_OPTION, COMPUTE_OPTIONS, helpFor, MODEL_OPTIONS, parseOptions, pick, type OptionRow } from '../../engine/options.ts';
import type { Engine } from '../../engine/api.ts';
import { buildApp } from '../app.ts';
import { defaultConfig } from '../config.ts';
import { defaultSamplingParams } from '../../engine/sampler/sampler.ts';

interface Options {
  backend: 'cpu' | 'webgpu' | 'reference';
  concurrency: number;
  maxTokens: number;
  promptTokens: number;
  rounds: number;
  model?: string;
  preset?: string;
  fake: boolean;
  computeDtype: 'f32' | 'bf16' | 'auto';
  kvDtype: 'f32' | 'bf16';
  ttftRequests: number;
}

const ROWS = [
  BACKEND_OPTION,
  { key: 'concurrency', flag: 'concurrency', kind: 'int', min: 1, default: 64, help: 'Concurrent requests (SSE streams).' },
  { key: 'maxTokens', flag: 'max-tokens', kind: 'int', min: 1, default: 64, help: 'Output tokens per request (EOS ignored).' },
  { key: 'promptTokens', flag: 'prompt-tokens', kind: 'int', min: 1, default: 16, help: 'Prompt tokens per request.' },
  { key: 'rounds', flag: 'rounds', kind: 'int', min: 1, default: 3, help: 'Alternated rounds of engine and HTTP.' },
  ...pick(MODEL_OPTIONS, 'model', 'preset'),
  { key: 'fake', flag: 'fake', kind: 'bool', default: false, help: 'The scripted fake engine at full speed: the HTTP ceiling.' },
  ...pick(COMPUTE_OPTIONS, 'computeDtype', 'kvDtype'),
  { key: 'ttftRequests', flag: 'ttft-requests', kind: 'int', min: 1, default: 9, help: 'Idle-server TTFT requests, one at a time.' },
] as const satisfies readonly OptionRow[];

/** The option table's parser (engine/options.ts), so bounds, choices and the dtype rows mean what they do elsewhere. */
function parse(argv: string[]): Options {
  const o = parseOptions(ROWS, argv, { usage: 'Usage: node --import tsx server/bench/http-overhead.ts [options]' });
  if (o === 'help') {
    process.stdout.write(helpFor(ROWS, 'Usage: node --import tsx server/bench/http-overhead.ts [options]'));
    process.exit(0);
  }
  return { ...o, kvDtype: o.kvDtype ?? 'f32' };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function promptIds(o: Options, i: number, vocab: number): number[] {
  // Distinct prompts (no prefix sharing helps one side), deterministic.
  return Array.from({ length: o.promptTokens }, (_, k) => (1000 + i * 37 + k * 11) % (vocab - 1));
}

async function engineRound(engine: Engine, o: Options, round: number): Promise<number> {
  const sampling = defaultSamplingParams({ maxTokens: o.maxTokens, ignoreEos: true });
  const t0 = performance.now();
  const counts = await Promise.all(
    Array.from({ length: o.concurrency }, async (_, i) => {
      let tokens = 0;
      for await (const ev of engine.submit({ id: `bench-${round}-${i}`, promptIds: promptIds(o, i, engine.info.vocabSize), sampling })) {
        if (ev.type === 'finished') tokens = ev.usage.completionTokens;
        if (ev.type === 'error') throw new Error(ev.message);
      }
      return tokens;
    }),
  );
  return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
}

/** Milliseconds from sending one streamed request to its first content chunk, on an otherwise idle server. */
async function idleTtftMs(url: string, engine: Engine, o: Options, i: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: promptIds(o, 10_000 + i, engine.info.vocabSize),
      max_tokens: 4,
      temperature: 0,
      ignore_eos: true,
      stream: true,
    }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const decoder = new TextDecoder();
  let seen = '',
    first: number | null = null;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    seen += decoder.decode(value, { stream: true });
    // The first data chunk carries the first token (its text may be empty: a partial UTF-8 character).
    if (first === null && seen.includes('data: {')) first = performance.now() - t0;
  }
  if (first === null) throw new Error('stream without a content chunk');
  return first;
}

async function httpRound(url: string, engine: Engine, o: Options): Promise<number> {
  const t0 = performance.now();
  const counts = await Promise.all(
    Array.from({ length: o.concurrency }, async (_, i) => {
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          prompt: promptIds(o, i, engine.info.vocabSize),
          max_tokens: o.maxTokens,
          temperature: 0,
          ignore_eos: true,
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      const text = await res.text();
      // Only the usage chunk is parsed: the client should cost as little as possible.
      const usageLine = text
        .split('\n\n')
        .reverse()
        .find((f) => f.includes('"usage"'));
      if (!usageLine || !text.endsWith('data: [DONE]\n\n')) throw new Error('stream without usage or [DONE]');
      return JSON.parse(usageLine.slice(6)).usage.completion_tokens as number;
    }),
  );
  return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
}

export async function runHttpOverheadBench(argv: string[]): Promise<void> {
  const o = parse(argv);
  const config = defaultConfig({
    port: 0,
    logLevel: 'silent',
    engine: { backend: o.backend, maxNumSeqs: o.concurrency, maxQueue: o.concurrency },
  });
  let engine: Engine;
  if (o.fake) {
    const { FakeEngine } = await import('../testing/fake-engine.ts');
    engine = new FakeEngine({ tokenIntervalMs: 0, contextLength: 4096, maxRunning: o.concurrency });
  } else {
    const { createEngine } = await import('../../engine/create.ts');
    engine = await createEngine({
      ...config.engine,
      model: o.model,
      preset: o.preset,
      kvCacheMb: 512,
      computeDtype: o.computeDtype,
      kvDtype: o.kvDtype,
    });
  }
  const { app, state } = await buildApp(config);
  state.engine = engine;
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  console.log(
    `model ${engine.info.modelName} (${engine.info.kind}${engine.info.demo ? ', demo' : ''}), backend ${o.fake ? 'fake' : o.backend}, ` +
      `${o.concurrency} concurrent, ${o.promptTokens} prompt + ${o.maxTokens} output tokens each, ${o.rounds} rounds, ` +
      `compute ${o.computeDtype}, KV ${o.kvDtype}`,
  );
  // One untimed, short warm-up of each path (first-use costs: weight panels, scratch, JIT).
  const warm = { ...o, maxTokens: Math.min(o.maxTokens, 16) };
  await engineRound(engine, warm, -1);
  await httpRound(url, engine, warm);
  const direct: number[] = [];
  const http: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    direct.push(await engineRound(engine, o, r));
    http.push(await httpRound(url, engine, o));
    console.log(`round ${r + 1}: engine ${direct[r].toFixed(1)} tok/s, http/sse ${http[r].toFixed(1)} tok/s`);
  }
  const d = median(direct);
  const h = median(http);
  // Rounds run back to back, so the per-round ratio cancels slow drifts of a shared machine.
  const paired = median(http.map((x, i) => x / direct[i]));
  console.log(
    `median: engine alone ${d.toFixed(1)} tok/s, through HTTP/SSE ${h.toFixed(1)} tok/s, ratio of medians ${((100 * h) / d).toFixed(1)}%, ` +
      `median per-round ratio ${(100 * paired).toFixed(1)}% (target >= 90%)`,
  );
  const ttft: number[] = [];
  for (let i = 0; i < o.ttftRequests; i++) ttft.push(await idleTtftMs(url, engine, o, i));
  if (ttft.length) {
    const sorted = [...ttft].sort((a, b) => a - b);
    console.log(
      `idle TTFT (${o.promptTokens}-token prompt, ${ttft.length} requests one at a time): p50 ${median(ttft).toFixed(1)} ms, ` +
        `min ${sorted[0]!.toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms (target p50 < 100 ms)`,
    );
  }
  await app.close();
  await engine.close();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runHttpOverheadBench(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
