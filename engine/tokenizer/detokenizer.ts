// Streaming decode: text out as tokens come, never half a character.
//
// Byte-level BPE splits multi-byte UTF-8 characters across tokens (an emoji is often 3-4 tokens),
// and decoding a prefix of them gives U+FFFD. Rather than re-decoding a sliding window of tokens and
// guessing from a trailing U+FFFD, this feeds each token's exact bytes to a streaming UTF-8 decoder,
// which holds back only a tail that may still become a valid character. That is O(bytes of the token)
// per push, and by the WHATWG decoding rules the concatenated output equals decoding all bytes at once
// (which is what the tokenizer's own decode does), invalid bytes included.

import type { Tokenizer } from './tokenizer.ts';

export class IncrementalDetokenizer {
  private readonly decoder = new TextDecoder('utf-8');
  private readonly skipSpecial: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    opts: { skipSpecialTokens?: boolean } = {},
  ) {
    this.skipSpecial = opts.skipSpecialTokens ?? false;
  }

  /** Text completed by these tokens ('' while a character is still incomplete). */
  push(ids: number[]): string {
    let text = '';
    for (const id of ids) {
      if (this.skipSpecial && this.tokenizer.isSpecial(id)) continue;
      text += this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true });
    }
    return text;
  }

  /** End of stream: whatever is held back, an incomplete character becoming U+FFFD as in decode(). */
  flush(): string {
    return this.decoder.decode();
  }
}
