// What to send: random prompts of chosen lengths, a JSONL dataset, or a shared-prefix workload.
// Random prompt lengths are exact in the server's own tokens when it has /tokenize (each prompt is
// re-measured and its word count corrected); otherwise they are an approximation, stated in the
// output, and the real counts come back in the usage chunk.
import { readFileSync } from 'node:fs';
import { request, type Agent } from 'undici';
import { Rng } from './rng.ts';
import type { ChatMessage, WorkItem } from './types.ts';

export type LengthSpec =
  | { kind: 'fixed'; value: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'normal'; mean: number; std: number };

/** "128", "uniform:64:256", "normal:128:32". */
export function parseLengthSpec(text: string): LengthSpec {
  const parts = text.split(':');
  const nums = parts.slice(1).map(Number);
  const bad = () => new Error(`bad length "${text}": use N, uniform:MIN:MAX or normal:MEAN:STD`);
  if (parts.length === 1) {
    const v = Number(parts[0]);
    if (!Number.isInteger(v) || v < 1) throw bad();
    return { kind: 'fixed', value: v };
  }
  if (nums.some((n) => !Number.isFinite(n)) || nums.length !== 2) throw bad();
  if (parts[0] === 'uniform' && nums[0] >= 1 && nums[1] >= nums[0])
    return { kind: 'uniform', min: Math.round(nums[0]), max: Math.round(nums[1]) };
  if (parts[0] === 'normal' && nums[0] >= 1 && nums[1] >= 0) return { kind: 'normal', mean: nums[0], std: nums[1] };
  throw bad();
}

export function sampleLength(spec: LengthSpec, rng: Rng): number {
  if (spec.kind === 'fixed') return spec.value;
  if (spec.kind === 'uniform') return rng.int(spec.min, spec.max);
  return Math.max(1, Math.round(spec.mean + spec.std * rng.normal()));
}

// Short common words: in GPT-2 / NeoX style BPE each is one token with its leading space, so word
// counts start close to token counts and /tokenize corrections converge in a step or two.
const WORDS = (
  'the of and to in is it you that he was for on are as with his they at be this from have or by one had ' +
  'not but what all were when we there can an your which their said if do will each about how up out them ' +
  'then she many some so these would other into has more her two like him see time could no make than first ' +
  'been its who now people my made over did down only way find use may water long little very after words ' +
  'called just where most know get through back much before go good new write our used me man too any day ' +
  'same right look think also around another came come work three word must because does part even place well'
).split(' ');

/** Measures prompts in the server's tokens through /tokenize (vLLM shape, then llama.cpp shape). */
export class Tokenizer {
  private constructor(
    private readonly url: string,
    private readonly shape: 'vllm' | 'llamacpp',
    private readonly agent: Agent,
    private readonly headers: Record<string, string>,
    private readonly model: string,
  ) {}

  static async probe(baseUrl: string, model: string, agent: Agent, headers: Record<string, string>): Promise<Tokenizer | null> {
    for (const shape of ['vllm', 'llamacpp'] as const) {
      const t = new Tokenizer(baseUrl + '/tokenize', shape, agent, headers, model);
      try {
        const n = await t.count('hello world');
        if (Number.isInteger(n) && n > 0) return t;
      } catch {
        /* try the next shape, then give up */
      }
    }
    return null;
  }

  get description(): string {
    return `exact: measured with the server's POST /tokenize (${this.shape} request shape)`;
  }

  async count(text: string): Promise<number> {
    const payload = this.shape === 'vllm' ? { model: this.model, prompt: text } : { content: text };
    const res = await request(this.url, {
      method: 'POST',
      headers: { ...this.headers, 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      dispatcher: this.agent,
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.body.json()) as { count?: number; tokens?: unknown[] };
    if (res.statusCode !== 200) throw new Error(`tokenize: HTTP ${res.statusCode}`);
    if (typeof body.count === 'number') return body.count;
    if (Array.isArray(body.tokens)) return body.tokens.length;
    throw new Error('tokenize: no count or tokens in the answer');
  }
}

// Words of at most three letters: one token each in common BPE vocabularies, used to top up a
// prompt that came out short, so the correction lands exactly instead of oscillating.
const SHORT_WORDS = WORDS.filter((w) => w.length <= 3);

function randomWords(rng: Rng, n: number, pool: string[] = WORDS): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = pool[rng.int(0, pool.length - 1)];
  return out;
}

/**
 * A prompt of `target` tokens: `fixedPrefix` (shared, never changed) + random words. With a
 * tokenizer the word list is corrected until the count matches: too long drops one word per excess
 * token (every word is at least one token, so it never stays too long), too short appends one-token
 * words. At most 8 rounds; the closest is kept. Without a tokenizer: one short word per token.
 */
async function exactPrompt(rng: Rng, target: number, fixedPrefix: string, tok: Tokenizer | null): Promise<string> {
  const join = (words: string[]) => (fixedPrefix ? fixedPrefix + ' ' : '') + words.join(' ');
  if (!tok) {
    const prefixWords = fixedPrefix ? fixedPrefix.split(' ').length : 0;
    return join(randomWords(rng, Math.max(1, target - prefixWords), SHORT_WORDS));
  }
  const prefixTokens = fixedPrefix ? await tok.count(fixedPrefix) : 0;
  let words = randomWords(rng, Math.max(1, target - prefixTokens));
  let best = { text: join(words), err: Infinity };
  for (let round = 0; round < 8; round++) {
    const text = join(words);
    const err = (await tok.count(text)) - target;
    if (Math.abs(err) < Math.abs(best.err)) best = { text, err };
    if (err === 0) break;
    if (err > 0) words = words.slice(0, Math.max(1, words.length - err));
    else words = words.concat(randomWords(rng, -err, SHORT_WORDS));
  }
  return best.text;
}

export interface RandomWorkload {
  kind: 'random';
  inputLen: LengthSpec;
  outputLen: LengthSpec;
  /** Shared-prefix workload: every prompt starts with one of `groups` prefixes of this many tokens. */
  sharedPrefixTokens?: number;
  prefixGroups?: number;
}

export interface DatasetWorkload {
  kind: 'dataset';
  path: string;
  outputLen: LengthSpec;
}

export type WorkloadSpec = RandomWorkload | DatasetWorkload;

/** Generates `count` work items up front, so prompt building never runs during the timed phase. */
export async function buildWorkItems(
  spec: WorkloadSpec,
  count: number,
  seed: number,
  tok: Tokenizer | null,
  chat: boolean,
): Promise<WorkItem[]> {
  const rng = new Rng(seed);
  if (spec.kind === 'dataset') return loadDataset(spec, count, rng, chat);
  const prefixes: string[] = [];
  for (let g = 0; g < (spec.sharedPrefixTokens ? (spec.prefixGroups ?? 1) : 0); g++) {
    prefixes.push(await exactPrompt(rng, spec.sharedPrefixTokens!, '', tok));
  }
  // Sample lengths sequentially (deterministic for a seed), then measure prompts concurrently.
  const plans = Array.from({ length: count }, (_, i) => ({
    inputTokens: sampleLength(spec.inputLen, rng),
    maxTokens: sampleLength(spec.outputLen, rng),
    prefix: prefixes.length ? prefixes[i % prefixes.length] : '',
    seed: rng.uint32(),
  }));
  const items: WorkItem[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const p = plans[i];
      const target = p.inputTokens + (p.prefix ? spec.sharedPrefixTokens! : 0);
      const prompt = await exactPrompt(new Rng(p.seed), target, p.prefix, tok);
      items[i] = { prompt, maxTokens: p.maxTokens, targetPromptTokens: target };
    }
  };
  await Promise.all(Array.from({ length: tok ? 8 : 1 }, worker));
  return items;
}

/** One dataset line as parsed; every field is type-checked before use. */
interface DatasetRow {
  prompt?: unknown;
  text?: unknown;
  messages?: unknown;
  max_tokens?: unknown;
  output_len?: unknown;
}

/** JSONL lines: {"prompt": str} or {"messages": [...]} (or {"text": str}), optional "max_tokens". */
export function loadDataset(spec: DatasetWorkload, count: number, rng: Rng, chat: boolean): WorkItem[] {
  const lines = readFileSync(spec.path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error(`${spec.path}: no lines`);
  const rows = lines.map((line, i): WorkItem => {
    let obj: DatasetRow;
    try {
      obj = JSON.parse(line);
    } catch {
      throw new Error(`${spec.path}:${i + 1}: not JSON`);
    }
    const maxTokens = Number.isInteger(obj.max_tokens)
      ? (obj.max_tokens as number)
      : Number.isInteger(obj.output_len)
        ? (obj.output_len as number)
        : 0;
    if (Array.isArray(obj.messages)) {
      if (!chat) throw new Error(`${spec.path}:${i + 1}: has messages; use --endpoint chat`);
      const messages: ChatMessage[] = obj.messages.map((m: { role?: unknown; content?: unknown }) => ({
        role: String(m.role),
        content: String(m.content),
      }));
      return { messages, maxTokens };
    }
    const prompt = typeof obj.prompt === 'string' ? obj.prompt : typeof obj.text === 'string' ? obj.text : null;
    if (prompt === null) throw new Error(`${spec.path}:${i + 1}: needs "prompt", "text" or "messages"`);
    return { prompt, maxTokens };
  });
  return Array.from({ length: count }, (_, i) => {
    const row = rows[i % rows.length];
    return { ...row, maxTokens: row.maxTokens || sampleLength(spec.outputLen, rng) };
  });
}
