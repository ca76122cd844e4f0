// Engine events -> OpenAI `text_completion` objects: streamed chunks or the whole response.
import type { EngineEvent, PromptTokenLogprob, TokenLogprob } from '../../engine/api.ts';
import type { Completion, CompletionChoice, CompletionLogprobs } from '../../protocol/types.ts';
import type { Generation } from '../generation.ts';
import { usageOf, type Renderer } from './usage.ts';

interface ChoiceState {
  text: string;
  tokenIds: number[];
  logprobs: CompletionLogprobs | null;
  finishReason: CompletionChoice['finish_reason'];
  /** Characters of text before this choice's generated text (the echoed prompt), for text_offset. */
  offsetBase: number;
  generatedChars: number;
}

export class CompletionRenderer implements Renderer<Completion, Completion> {
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly choices: ChoiceState[];

  constructor(private readonly gen: Generation) {
    const req = gen.req;
    this.choices = Array.from({ length: gen.choiceCount }, (_, c) => {
      const prompt = req.prompts[gen.promptOf(c)];
      return {
        text: req.echo ? prompt.text : '',
        tokenIds: [],
        logprobs: req.logprobs !== undefined ? { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] } : null,
        finishReason: null,
        offsetBase: req.echo ? prompt.text.length : 0,
        generatedChars: 0,
      };
    });
  }

  private wrap(choices: CompletionChoice[]): Completion {
    return { id: this.gen.id, object: 'text_completion', created: this.created, model: this.gen.req.model, choices };
  }

  private choice(index: number, text: string, extra: Partial<CompletionChoice> = {}): CompletionChoice {
    return { index, text, logprobs: null, finish_reason: null, ...extra };
  }

  opening(): Completion[] {
    const req = this.gen.req;
    if (!req.echo && !req.returnTokenIds) return [];
    return this.choices.map((_, c) => {
      const prompt = req.prompts[this.gen.promptOf(c)];
      return this.wrap([this.choice(c, req.echo ? prompt.text : '', req.returnTokenIds ? { prompt_token_ids: prompt.ids } : {})]);
    });
  }

  onEvent(c: number, event: EngineEvent): Completion[] {
    const st = this.choices[c];
    const req = this.gen.req;
    switch (event.type) {
      case 'started':
      case 'error':
        return [];
      case 'prompt_logprobs': {
        // Echo with logprobs: the prompt's entries come first, offsets counted from the prompt's start.
        if (!st.logprobs) return [];
        const part = logprobsPart(event.logprobs, 0);
        extendLogprobs(st.logprobs, part); // the engine sends it before any token, so it lands first
        return [this.wrap([this.choice(c, '', { logprobs: part })])];
      }
      case 'token': {
        const lp = event.logprobs && st.logprobs ? logprobsPart(event.logprobs, st.offsetBase + st.generatedChars) : null;
        if (lp) extendLogprobs(st.logprobs!, lp);
        st.text += event.text;
        st.generatedChars += event.text.length;
        st.tokenIds.push(...event.tokenIds);
        // Nothing to say: a held-back partial character with no ids or logprobs asked for.
        if (event.text === '' && !lp && !req.returnTokenIds) return [];
        return [this.wrap([this.choice(c, event.text, { logprobs: lp, ...(req.returnTokenIds ? { token_ids: event.tokenIds } : {}) })])];
      }
      case 'finished': {
        const tail = event.text ?? '';
        st.text += tail;
        st.generatedChars += tail.length;
        st.finishReason = event.reason;
        return [this.wrap([this.choice(c, tail, { finish_reason: event.reason })])];
      }
    }
  }

  usageChunk(): Completion {
    return { ...this.wrap([]), usage: usageOf(this.gen) };
  }

  response(): Completion {
    const req = this.gen.req;
    const choices = this.choices.map((st, c) =>
      this.choice(c, st.text, {
        logprobs: st.logprobs,
        finish_reason: st.finishReason,
        ...(req.returnTokenIds ? { token_ids: st.tokenIds, prompt_token_ids: req.prompts[this.gen.promptOf(c)].ids } : {}),
      }),
    );
    return { ...this.wrap(choices), usage: usageOf(this.gen) };
  }
}

/** Wire logprobs of consecutive tokens whose text starts at character `offset` (prompt entries may be null). */
function logprobsPart(lps: readonly (TokenLogprob | PromptTokenLogprob)[], offset: number): CompletionLogprobs {
  const part: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const lp of lps) {
    part.tokens.push(lp.token);
    part.token_logprobs.push(lp.logprob);
    part.top_logprobs.push(lp.top ? Object.fromEntries(lp.top.map((t) => [t.token, t.logprob])) : null);
    part.text_offset.push(offset);
    offset += lp.token.length;
  }
  return part;
}

/** Appends `part` to the choice's accumulated logprobs, in place. */
function extendLogprobs(all: CompletionLogprobs, part: CompletionLogprobs): void {
  all.tokens.push(...part.tokens);
  all.token_logprobs.push(...part.token_logprobs);
  all.top_logprobs.push(...part.top_logprobs);
  all.text_offset.push(...part.text_offset);
}
