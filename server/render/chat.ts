// Engine events -> OpenAI `chat.completion` / `chat.completion.chunk` objects. Streams open with one
// role chunk per choice and close each choice with an empty delta carrying finish_reason.
import type { EngineEvent, TokenLogprob } from '../../engine/api.ts';
import type { ChatChunkChoice, ChatCompletion, ChatCompletionChunk, ChatLogprobs, ChatTokenLogprob } from '../../protocol/types.ts';
import type { Generation } from '../generation.ts';
import { usageOf, type Renderer } from './usage.ts';

const utf8 = new TextEncoder();

interface ChoiceState {
  text: string;
  tokenIds: number[];
  logprobs: ChatLogprobs | null;
  finishReason: ChatChunkChoice['finish_reason'];
}

export class ChatRenderer implements Renderer<ChatCompletionChunk, ChatCompletion> {
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly choices: ChoiceState[];

  constructor(private readonly gen: Generation) {
    this.choices = Array.from({ length: gen.choiceCount }, () => ({
      text: '',
      tokenIds: [],
      logprobs: gen.req.logprobs !== undefined ? { content: [] } : null,
      finishReason: null,
    }));
  }

  private wrap(choices: ChatChunkChoice[]): ChatCompletionChunk {
    return { id: this.gen.id, object: 'chat.completion.chunk', created: this.created, model: this.gen.req.model, choices };
  }

  opening(): ChatCompletionChunk[] {
    const chunks = this.choices.map((_, c) =>
      this.wrap([{ index: c, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
    );
    if (this.gen.req.returnTokenIds && chunks.length) chunks[0].prompt_token_ids = this.gen.req.prompts[0].ids;
    return chunks;
  }

  onEvent(c: number, event: EngineEvent): ChatCompletionChunk[] {
    const st = this.choices[c];
    const req = this.gen.req;
    switch (event.type) {
      case 'started':
      case 'prompt_logprobs': // chat has no echo, so never asks for them
      case 'error':
        return [];
      case 'token': {
        const lp = event.logprobs && st.logprobs ? { content: event.logprobs.map(chatLogprob) } : null;
        if (lp) st.logprobs!.content.push(...lp.content);
        st.text += event.text;
        st.tokenIds.push(...event.tokenIds);
        if (event.text === '' && !lp && !req.returnTokenIds) return [];
        const choice: ChatChunkChoice = { index: c, delta: { content: event.text }, logprobs: lp, finish_reason: null };
        if (req.returnTokenIds) choice.token_ids = event.tokenIds;
        return [this.wrap([choice])];
      }
      case 'finished': {
        st.finishReason = event.reason;
        const out: ChatCompletionChunk[] = [];
        if (event.text) {
          st.text += event.text;
          out.push(this.wrap([{ index: c, delta: { content: event.text }, logprobs: null, finish_reason: null }]));
        }
        out.push(this.wrap([{ index: c, delta: {}, logprobs: null, finish_reason: event.reason }]));
        return out;
      }
    }
  }

  usageChunk(): ChatCompletionChunk {
    return { ...this.wrap([]), usage: usageOf(this.gen) };
  }

  response(): ChatCompletion {
    const req = this.gen.req;
    const out: ChatCompletion = {
      id: this.gen.id,
      object: 'chat.completion',
      created: this.created,
      model: req.model,
      choices: this.choices.map((st, c) => ({
        index: c,
        message: { role: 'assistant', content: st.text },
        logprobs: st.logprobs,
        finish_reason: st.finishReason,
        ...(req.returnTokenIds ? { token_ids: st.tokenIds } : {}),
      })),
      usage: usageOf(this.gen),
    };
    if (req.returnTokenIds) out.prompt_token_ids = req.prompts[0].ids;
    return out;
  }
}

function chatLogprob(lp: TokenLogprob): ChatTokenLogprob {
  return {
    token: lp.token,
    logprob: lp.logprob,
    bytes: Array.from(utf8.encode(lp.token)),
    top_logprobs: lp.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: Array.from(utf8.encode(t.token)) })),
  };
}
