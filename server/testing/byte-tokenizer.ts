// The simplest deterministic tokenizer: one token per UTF-8 byte (ids 0-255) plus an end-of-sequence
// token 256. Multi-byte characters span several tokens, which exercises UTF-8 hold-back for free.
import type { TokenizerLike } from '../../engine/api.ts';

export class ByteTokenizer implements TokenizerLike {
  readonly vocabSize = 257;
  private readonly encoder = new TextEncoder();
  encode(text: string): number[] {
    return Array.from(this.encoder.encode(text));
  }
  decode(ids: number[]): string {
    const bytes = Uint8Array.from(ids.filter((id) => id >= 0 && id < 256));
    return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  }
}
