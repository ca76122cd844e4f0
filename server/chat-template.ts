// Chat messages -> prompt text through a Jinja chat template (@huggingface/jinja, the engine HF's own
// JS libraries use). Base models (Pythia, the Block Transformer checkpoints) ship no template, so the
// default below writes a plain transcript that such models continue naturally:
//
//   <system text>\n\n User: <text>\n\n Assistant: <text>\n\n ... Assistant:
//
// (without the spaces after \n\n). `--chat-template FILE` replaces it; the template sees `messages`
// (content parts already joined to one string), `add_generation_prompt`, `bos_token` and `eos_token`.
import { Template } from '@huggingface/jinja';
import type { ChatMessage } from '../protocol/types.ts';
import { ApiError } from './errors.ts';

export const DEFAULT_CHAT_TEMPLATE =
  '{% for message in messages %}' +
  "{% if message.role == 'user' %}{{ 'User: ' + message.content + '\\n\\n' }}" +
  "{% elif message.role == 'assistant' %}{{ 'Assistant: ' + message.content + '\\n\\n' }}" +
  "{% else %}{{ message.content + '\\n\\n' }}{% endif %}" +
  '{% endfor %}' +
  "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

export class ChatTemplate {
  private readonly template: Template;
  constructor(
    source: string = DEFAULT_CHAT_TEMPLATE,
    private readonly specialTokens: { bos_token: string; eos_token: string } = { bos_token: '', eos_token: '' },
  ) {
    // Parse errors surface at start-up (a bad --chat-template file), not on the first request.
    this.template = new Template(source);
  }

  render(messages: ChatMessage[], addGenerationPrompt = true): string {
    const plain = messages.map((m) => ({
      role: m.role,
      content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
      ...(m.name !== undefined ? { name: m.name } : {}),
    }));
    try {
      return this.template.render({ messages: plain, add_generation_prompt: addGenerationPrompt, ...this.specialTokens });
    } catch (e) {
      // Templates reject conversations they cannot express (raise_exception): the client's input.
      throw new ApiError('invalid_request', `The chat template could not render these messages: ${(e as Error).message}`, 'messages');
    }
  }
}
