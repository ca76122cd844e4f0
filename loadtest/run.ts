// One `blockserve loadtest` invocation: ask the server what it serves, build the workload, warm up,
// run each load point (one, or a sweep) with /metrics scraped alongside, and collect a RunFile.
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { aggregate } from './aggregate.ts';
import type { LoadtestConfig } from './args.ts';
import { StreamingClient } from './client.ts';
import { ProgressLine } from './progress.ts';
import { runPhase } from './runner.ts';
import { loadLabel, RUN_FORMAT, type PointResult, type RunFile } from './runfile.ts';
import { MetricsScraper } from './scraper.ts';
import { formatPoint } from './summary.ts';
import { sweepValues, sweepVerdict } from './sweep.ts';
import type { LoadSpec, WorkItem } from './types.ts';
import { buildWorkItems, Tokenizer } from './workload.ts';

export interface RunIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Raised when the tool must stop with a message and a specific exit code. */
export class LoadtestError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Largest number of distinct prompts prepared for duration-bound runs; they are cycled beyond it. */
const MAX_PROMPT_POOL = 2000;

async function getJson(url: string, agent: Agent, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  const res = await request(url, { headers, dispatcher: agent, signal: AbortSignal.timeout(30_000) });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.statusCode, body };
}

function poolSize(cfg: LoadtestConfig, loads: LoadSpec[]): number {
  if (cfg.numRequests !== undefined) return cfg.numRequests + cfg.warmup;
  const perPoint = loads.map((l) => (l.kind === 'rate' ? Math.ceil(l.rate * cfg.durationS! * 1.2) + 16 : MAX_PROMPT_POOL));
  return Math.min(MAX_PROMPT_POOL, Math.max(...perPoint) + cfg.warmup);
}

export async function executeRun(cfg: LoadtestConfig, io: RunIo): Promise<RunFile> {
  const side = new Agent({ connections: 16 });
  const headers: Record<string, string> = cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {};
  try {
    let models: { status: number; body: unknown };
    try {
      models = await getJson(`${cfg.url}/v1/models`, side, headers);
    } catch (err) {
      throw new LoadtestError(`cannot reach ${cfg.url}/v1/models: ${(err as Error).message}`, 1);
    }
    const listed = (models.body as { data?: Array<{ id?: string }> })?.data;
    const model = cfg.model ?? (Array.isArray(listed) && typeof listed[0]?.id === 'string' ? listed[0].id : null);
    if (!model) throw new LoadtestError(`no --model given and ${cfg.url}/v1/models (HTTP ${models.status}) lists none`, 1);

    const tok = cfg.tokenize && cfg.workload.kind === 'random' ? await Tokenizer.probe(cfg.url, model, side, headers) : null;
    const promptLengths =
      cfg.workload.kind === 'dataset'
        ? 'from the dataset; counts from the usage chunk'
        : tok
          ? tok.description + (cfg.endpoint === 'chat' ? ' for the user message; the chat template adds its own tokens' : '')
          : 'approximate: one common English word per token (the server has no usable /tokenize); real counts come from the usage chunk';

    const loads: LoadSpec[] = cfg.sweep
      ? sweepValues(cfg.sweep.values, cfg.sweep.maxPoints).map((v) =>
          cfg.sweep!.kind === 'rate' ? { kind: 'rate', rate: v, burstiness: cfg.burstiness } : { kind: 'concurrency', concurrency: v },
        )
      : [
          cfg.rate !== null
            ? { kind: 'rate', rate: cfg.rate, burstiness: cfg.burstiness }
            : { kind: 'concurrency', concurrency: cfg.concurrency! },
        ];
    const items: WorkItem[] = await buildWorkItems(cfg.workload, poolSize(cfg, loads), cfg.seed, tok, cfg.endpoint === 'chat');
    if (!cfg.quiet) io.err.write(`model ${model} at ${cfg.url}; prompt lengths ${promptLengths}\n`);

    const client = new StreamingClient({
      baseUrl: cfg.url,
      endpoint: cfg.endpoint,
      model,
      apiKey: cfg.apiKey,
      ignoreEos: cfg.ignoreEos,
      temperature: cfg.temperature,
      timeoutMs: cfg.timeoutMs,
    });
    try {
      let warmupFailed = 0;
      if (cfg.warmup > 0) {
        // Warm-up is its own closed-loop phase, excluded from every figure.
        // As many workers as the first load point will keep busy (capped), so its connections exist.
        const first = loads[0];
        const width = Math.min(cfg.warmup, 64, first.kind === 'concurrency' ? first.concurrency : Math.ceil(first.rate / 10));
        const warm = await runPhase(client, {
          load: { kind: 'concurrency', concurrency: Math.max(1, width) },
          numRequests: cfg.warmup,
          seed: cfg.seed,
          items: items.slice(-cfg.warmup),
        });
        warmupFailed = warm.records.filter((r) => !r.ok).length;
        if (warmupFailed === cfg.warmup) {
          const r = warm.records[0];
          throw new LoadtestError(`every warm-up request failed; first: ${r.errorKind} ${r.error ?? ''}`, 1);
        }
      }

      const run: RunFile = {
        format: RUN_FORMAT,
        label: cfg.label ?? `${model} @ ${cfg.url}`,
        createdAt: new Date().toISOString(),
        config: { ...cfg, apiKey: cfg.apiKey ? '(set)' : undefined },
        server: { url: cfg.url, model, models: models.body, promptLengths },
        warmup: { requests: cfg.warmup, failed: warmupFailed },
        points: [],
        refused: [],
        sweep: null,
      };
      for (const load of loads) {
        const progress = new ProgressLine(io.err, loadLabel(load), cfg.numRequests ?? null);
        const phaseStart = performance.now();
        const scraper = cfg.metricsUrl ? new MetricsScraper(cfg.metricsUrl, cfg.scrapeIntervalMs, side, headers, phaseStart) : null;
        scraper?.start();
        if (!cfg.quiet) progress.begin();
        const phase = await runPhase(
          client,
          {
            load,
            numRequests: cfg.numRequests,
            durationS: cfg.durationS,
            seed: cfg.seed,
            items,
            maxSendLagMs: cfg.maxSendLagMs,
          },
          cfg.quiet ? undefined : progress,
        );
        if (!cfg.quiet) progress.end();
        const metrics = scraper ? await scraper.stop() : null;
        if (phase.refused) {
          run.refused.push({ load, reason: phase.refused, overhead: phase.overhead });
          io.err.write(`refusing to report ${loadLabel(load)}: ${phase.refused}\n`);
          if (cfg.sweep) run.sweep = { kind: cfg.sweep.kind, stoppedBecause: `the client could not generate ${loadLabel(load)}` };
          break;
        }
        const point: PointResult = {
          load,
          records: phase.records,
          aggregates: aggregate(phase.records, cfg.slo),
          overhead: phase.overhead,
          metrics: metrics && metrics.scrapes > 0 ? metrics : null,
        };
        run.points.push(point);
        io.out.write(formatPoint(point) + '\n\n');
        if (cfg.sweep) {
          const verdict = sweepVerdict(
            run.points.map((p) => p.aggregates),
            cfg.sweep.riseFraction,
          );
          if (verdict.stop) {
            run.sweep = { kind: cfg.sweep.kind, stoppedBecause: verdict.reason };
            break;
          }
        }
      }
      if (cfg.sweep && !run.sweep)
        run.sweep = { kind: cfg.sweep.kind, stoppedBecause: 'all requested load points were run without reaching saturation' };
      return run;
    } finally {
      await client.close();
    }
  } finally {
    await side.close();
  }
}
