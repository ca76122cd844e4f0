// `blockserve generate`: one prompt in, text out. For people and scripts (--json). It runs the same
// engine as the server (createLocalEngine + submit(), in this thread): the same scheduler, padding,
// sampler and stopping rules, so a prompt generates here what it generates over HTTP.

import { createLocalEngine } from '../engine/create.ts';
import { EngineRequestError, type Engine, type EngineEvent, type GenerateRequest } from '../engine/api.ts';
import { BACKEND_OPTION, MODEL_OPTIONS, OptionError, parseOptions, helpFor, type OptionRow } from '../engine/options.ts';
import { defaultSamplingParams } from '../engine/sampler/sampler.ts';

export { OptionError as UsageError };

const GENERATE_OPTIONS = [
  { key: 'prompt', flag: 'prompt', kind: 'string', help: 'Prompt text (needs a tokenizer that fits the model).' },
  {
    key: 'promptIds',
    flag: 'prompt-ids',
    kind: 'string',
    help: 'Prompt as comma-separated token ids, e.g. 1,2,3.',
    check: (s: string) => (parseIds(s) ? undefined : 'expected comma-separated non-negative integers'),
  },
  { key: 'maxTokens', flag: 'max-tokens', kind: 'int', min: 1, default: 32, help: 'Tokens to generate.' },
  { key: 'temperature', flag: 'temperature', kind: 'number', min: 0, default: 0, help: '0 = greedy.' },
  {
    key: 'topP',
    flag: 'top-p',
    kind: 'number',
    min: 0,
    max: 1,
    default: 1,
    help: 'Nucleus sampling (above 0).',
    check: (p: number) => (p > 0 ? undefined : 'expected a number in (0, 1]'),
  },
  { key: 'seed', flag: 'seed', kind: 'int', default: 0, help: 'Sampling seed.' },
  { key: 'json', flag: 'json', kind: 'bool', default: false, help: 'Print {"prompt_ids", "output_ids", "text"}.' },
] as const satisfies readonly OptionRow[];

/** Every row of `generate`: the engine's model rows and backend, then generation's own. */
export const GENERATE_ROWS = [...MODEL_OPTIONS, BACKEND_OPTION, ...GENERATE_OPTIONS] as const;

const USAGE =
  'Usage: blockserve generate --prompt TEXT | --prompt-ids 1,2,3 [options]\n\nGenerates one continuation through the serving engine. Model and backend options also read their environment variable.';

function parseIds(s: string): number[] | null {
  const ids = s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length)
    .map(Number);
  return ids.length && ids.every((x) => Number.isInteger(x) && x >= 0) ? ids : null;
}

/** Where output goes (tests capture it). */
export interface Output {
  out(s: string): void;
  err(s: string): void;
}
const STDIO: Output = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** The engine's field names as this command's flags, for its request errors (the engine's checkRequest is the one rule). */
const FLAG_OF: Record<string, string> = { maxTokens: '--max-tokens', temperature: '--temperature', topP: '--top-p' };

function submit(engine: Engine, req: GenerateRequest, promptFlag: string): AsyncIterable<EngineEvent> {
  try {
    return engine.submit(req);
  } catch (e) {
    if (!(e instanceof EngineRequestError) || e.field === undefined) throw e;
    const flag = e.field === 'promptIds' ? promptFlag : (FLAG_OF[e.field] ?? e.field);
    throw new OptionError(`${flag}${e.index !== undefined ? ` (token ${e.index})` : ''}: ${e.detail}`);
  }
}

/** Hub ids and released names are fetched (or found in their caches) first; HF_* are read here, at the edge. */
async function locateForCli(
  model: string,
  revision: string | undefined,
  env: Record<string, string | undefined>,
  io: Output,
): Promise<{ path: string }> {
  const { locateModel } = await import('../engine/hub/locate.ts');
  const { hubSettingsFromEnv } = await import('../engine/hub/settings.ts');
  const { progressPrinter } = await import('./pull.ts');
  const progress = progressPrinter();
  const located = await locateModel(model, hubSettingsFromEnv(env), { revision, onProgress: progress, onLog: (l) => io.err(`${l}\n`) });
  progress.end();
  return located;
}

export async function runGenerate(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
  io: Output = STDIO,
): Promise<number> {
  const o = parseOptions(GENERATE_ROWS, argv, { env, usage: USAGE });
  if (o === 'help') {
    io.out(helpFor(GENERATE_ROWS, USAGE));
    return 0;
  }
  if ((o.prompt === undefined) === (o.promptIds === undefined))
    throw new OptionError(`give exactly one of --prompt or --prompt-ids\n\n${helpFor(GENERATE_ROWS, USAGE)}`);

  // With --prompt-ids a model whose vocabulary no tokenizer fits (e.g. the tiny test fixtures) still
  // generates ids; text needs a tokenizer, so --prompt does not forgive a misfit.
  let misfit = false;
  if (o.revision !== undefined && o.model === undefined) throw new OptionError('--revision needs a Hub id in --model');
  const model = o.model === undefined ? undefined : (await locateForCli(o.model, o.revision, env, io)).path;
  const { engine } = await createLocalEngine({
    model,
    preset: o.preset,
    config: o.config,
    tokenizer: o.tokenizer,
    positionMode: o.positionMode,
    padFirstBlock: o.padFirstBlock,
    backend: o.backend,
    kvCacheMb: 0,
    kvCacheSequences: 1,
    maxNumSeqs: 1,
    maxQueue: 1,
    onTokenizerMisfit:
      o.promptIds === undefined
        ? undefined
        : (message) => {
            misfit = true;
            io.err(`blockserve: no text output: ${message}\n`);
          },
  });
  try {
    const tokenizer = misfit ? null : engine.tokenizer;
    const promptIds = o.promptIds !== undefined ? parseIds(o.promptIds)! : tokenizer!.encode(o.prompt!);
    const sampling = defaultSamplingParams({ temperature: o.temperature, topP: o.topP, seed: o.seed, maxTokens: o.maxTokens });
    const outputIds: number[] = [];
    for await (const ev of submit(
      engine,
      { id: 'generate', promptIds, sampling },
      o.promptIds !== undefined ? '--prompt-ids' : '--prompt',
    )) {
      if (ev.type === 'token') outputIds.push(...ev.tokenIds);
      else if (ev.type === 'error') throw new Error(`generation failed: ${ev.message}`);
    }
    const text = tokenizer ? tokenizer.decode(outputIds) : null;
    if (o.json) io.out(JSON.stringify({ prompt_ids: promptIds, output_ids: outputIds, text }) + '\n');
    else if (tokenizer) io.out(`${o.prompt ?? tokenizer.decode(promptIds)}${text}\n`);
    else io.out(`${outputIds.join(',')}\n`);
    return 0;
  } finally {
    await engine.close();
  }
}
