// Command line of `blockserve loadtest`: parsed and validated into one config object that the rest
// of the tool receives; nothing else reads argv or the environment.
import { parseArgs } from 'node:util';
import { parseSlo, type Slo } from './aggregate.ts';
import type { Endpoint } from './types.ts';
import { parseLengthSpec, type WorkloadSpec } from './workload.ts';

export interface SweepSpec {
  kind: 'rate' | 'concurrency';
  /** Explicit values, or null for doubling from 1 until saturation (at most `maxPoints`). */
  values: number[] | null;
  maxPoints: number;
  /** A step "rises" when latency and queueing grow by more than this fraction (default 0.1). */
  riseFraction: number;
}

export interface LoadtestConfig {
  url: string;
  model: string | null;
  endpoint: Endpoint;
  apiKey?: string;
  rate: number | null;
  burstiness: number;
  concurrency: number | null;
  sweep: SweepSpec | null;
  durationS?: number;
  numRequests?: number;
  warmup: number;
  seed: number;
  workload: WorkloadSpec;
  ignoreEos: boolean;
  temperature?: number;
  tokenize: boolean;
  slo: Slo | null;
  out: string | null;
  html: string | null;
  metricsUrl: string | null;
  scrapeIntervalMs: number;
  timeoutMs: number;
  maxSendLagMs: number;
  label: string | null;
  quiet: boolean;
}

export const USAGE = `usage: blockserve loadtest --url URL [--model NAME] [options]
       blockserve loadtest compare a.json b.json [...] [--html cmp.html]

load:      --rate R [--burstiness B]      open loop, Poisson arrivals (B=1) or gamma (B<1 burstier)
           --concurrency C                closed loop, C requests in flight
           --sweep rate[=1,2,4] | concurrency[=1,2,4]   several loads; without values: doubling
                                          from 1; stops once latency and queueing keep rising
                                          while throughput no longer grows
           --duration S | --num-requests N   per load point (default --num-requests 200)
           --warmup N (default 1) --seed S (default 0) --timeout S (default 600)
workload:  --endpoint completions|chat  --input-len SPEC  --output-len SPEC
           SPEC = N | uniform:MIN:MAX | normal:MEAN:STD   (defaults 128 and 128)
           --dataset file.jsonl ({"prompt"} | {"messages"}, optional "max_tokens")
           --shared-prefix TOKENS [--prefix-groups G]
           --no-ignore-eos  --temperature T  --no-tokenize
report:    --slo ttft:MS,tpot:MS  --out run.json  --html report.html  --label NAME
           --metrics-url URL | --no-metrics  --scrape-interval S (default 1)
           --max-send-lag-ms MS (default 25: refuse an open-loop run whose
           p95 send lateness is above it)  --quiet   --api-key KEY`;

function num(name: string, text: string | undefined, check: (v: number) => boolean): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!Number.isFinite(v) || !check(v)) throw new Error(`bad --${name} "${text}"`);
  return v;
}

export function parseSweep(text: string): SweepSpec {
  const [kind, list] = text.split('=');
  if (kind !== 'rate' && kind !== 'concurrency') throw new Error(`bad --sweep "${text}": rate[=R1,R2,...] or concurrency[=C1,C2,...]`);
  let values: number[] | null = null;
  if (list !== undefined) {
    values = list.split(',').map((v) => Number(v));
    if (values.length === 0 || values.some((v) => !(v > 0)) || (kind === 'concurrency' && values.some((v) => !Number.isInteger(v)))) {
      throw new Error(`bad --sweep values "${list}"`);
    }
  }
  return { kind, values, maxPoints: 12, riseFraction: 0.1 };
}

export function parseLoadtestArgs(argv: string[]): LoadtestConfig {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      url: { type: 'string' },
      model: { type: 'string' },
      endpoint: { type: 'string' },
      'api-key': { type: 'string' },
      rate: { type: 'string' },
      burstiness: { type: 'string' },
      concurrency: { type: 'string' },
      sweep: { type: 'string' },
      duration: { type: 'string' },
      'num-requests': { type: 'string' },
      warmup: { type: 'string' },
      seed: { type: 'string' },
      'input-len': { type: 'string' },
      'output-len': { type: 'string' },
      dataset: { type: 'string' },
      'shared-prefix': { type: 'string' },
      'prefix-groups': { type: 'string' },
      'no-ignore-eos': { type: 'boolean' },
      temperature: { type: 'string' },
      'no-tokenize': { type: 'boolean' },
      slo: { type: 'string' },
      out: { type: 'string' },
      html: { type: 'string' },
      'metrics-url': { type: 'string' },
      'no-metrics': { type: 'boolean' },
      'scrape-interval': { type: 'string' },
      timeout: { type: 'string' },
      'max-send-lag-ms': { type: 'string' },
      label: { type: 'string' },
      quiet: { type: 'boolean' },
    },
  });
  if (!v.url) throw new Error('--url is required');
  const url = v.url.replace(/\/+$/, '').replace(/\/v1$/, '');
  if (!/^https?:\/\//.test(url)) throw new Error(`--url must start with http:// or https://, got ${v.url}`);
  const endpoint = (v.endpoint ?? 'completions') as Endpoint;
  if (endpoint !== 'completions' && endpoint !== 'chat') throw new Error(`bad --endpoint "${v.endpoint}": completions or chat`);
  const rate = num('rate', v.rate, (x) => x > 0) ?? null;
  const concurrency = num('concurrency', v.concurrency, (x) => Number.isInteger(x) && x >= 1) ?? null;
  const sweep = v.sweep !== undefined ? parseSweep(v.sweep) : null;
  if ([rate !== null, concurrency !== null, sweep !== null].filter(Boolean).length !== 1) {
    throw new Error('choose exactly one of --rate, --concurrency, --sweep');
  }
  const durationS = num('duration', v.duration, (x) => x > 0);
  let numRequests = num('num-requests', v['num-requests'], (x) => Number.isInteger(x) && x >= 1);
  if (durationS !== undefined && numRequests !== undefined) throw new Error('choose one of --duration and --num-requests');
  if (durationS === undefined && numRequests === undefined) numRequests = 200;
  const outputLen = parseLengthSpec(v['output-len'] ?? '128');
  let workload: WorkloadSpec;
  if (v.dataset) {
    if (v['input-len'] || v['shared-prefix'])
      throw new Error('--dataset takes its prompts from the file: drop --input-len / --shared-prefix');
    workload = { kind: 'dataset', path: v.dataset, outputLen };
  } else {
    workload = {
      kind: 'random',
      inputLen: parseLengthSpec(v['input-len'] ?? '128'),
      outputLen,
      sharedPrefixTokens: num('shared-prefix', v['shared-prefix'], (x) => Number.isInteger(x) && x >= 1),
      prefixGroups: num('prefix-groups', v['prefix-groups'], (x) => Number.isInteger(x) && x >= 1),
    };
  }
  return {
    url,
    model: v.model ?? null,
    endpoint,
    apiKey: v['api-key'],
    rate,
    burstiness: num('burstiness', v.burstiness, (x) => x > 0) ?? 1,
    concurrency,
    sweep,
    durationS,
    numRequests,
    warmup: num('warmup', v.warmup, (x) => Number.isInteger(x) && x >= 0) ?? 1,
    seed: num('seed', v.seed, (x) => Number.isInteger(x)) ?? 0,
    workload,
    ignoreEos: !v['no-ignore-eos'],
    temperature: num('temperature', v.temperature, (x) => x >= 0),
    tokenize: !v['no-tokenize'],
    slo: v.slo ? parseSlo(v.slo) : null,
    out: v.out ?? null,
    html: v.html ?? null,
    metricsUrl: v['no-metrics'] ? null : (v['metrics-url'] ?? `${url}/metrics`),
    scrapeIntervalMs: (num('scrape-interval', v['scrape-interval'], (x) => x > 0) ?? 1) * 1000,
    timeoutMs: (num('timeout', v.timeout, (x) => x > 0) ?? 600) * 1000,
    maxSendLagMs: num('max-send-lag-ms', v['max-send-lag-ms'], (x) => x > 0) ?? 25,
    label: v.label ?? null,
    quiet: !!v.quiet,
  };
}
