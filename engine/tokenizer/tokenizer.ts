// The GPT-NeoX tokenizer (byte-level BPE; <|endoftext|> = 0, <|padding|> = 1) loaded from a local
// HF tokenizer.json with @huggingface/tokenizers, which runs the file's own pipeline (NFC normalizer,
// ByteLevel pre-tokenizer, BPE, ByteLevel decoder) offline: it is handed parsed JSON and never fetches.
//
// API
//   loadTokenizer(path)  path = tokenizer.json or a directory holding one -> Tokenizer
//   tok.encode(text)     ids, no BOS/EOS added; '<|endoftext|>' written in the text becomes id 0 (as in HF)
//   tok.decode(ids, {skipSpecialTokens})  special tokens kept by default, so decode(encode(s)) === s;
//                        ids the tokenizer does not know (the model's padded vocab rows) decode to ''
//   tok.tokenText(id), tok.tokenBytes(id)  one token's text / exact bytes (logprobs display)
//   new IncrementalDetokenizer(tok)        streaming decode (./detokenizer.ts)
//   checkTokenizerFitsModel(tok, modelVocabSize)
//
// decode() matches HF `tokenizers` (Rust/Python) decode; tokenizer_config.json is not read, so no
// transformers-style clean-up of spaces is applied (test/fixtures/tokenizer/golden.json checks both).

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { TokenizerLike } from '../api.ts';
import { byteLevelTokenBytes } from './byte-level.ts';

export { IncrementalDetokenizer } from './detokenizer.ts';

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

export const EOS_TOKEN = '<|endoftext|>';
export const PAD_TOKEN = '<|padding|>';

const EMPTY = new Uint8Array(0);

interface TokenizerJson {
  decoder?: { type?: string } | null;
  added_tokens?: { id: number; content: string; special: boolean }[];
}

export class Tokenizer implements TokenizerLike {
  /** One more than the largest id the tokenizer can produce, added tokens included. */
  readonly vocabSize: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  private readonly specialIds: Set<number>;
  private readonly bytesCache: (Uint8Array | undefined)[];
  private readonly textCache: (string | undefined)[];

  constructor(
    /** Where it was loaded from, for messages. */
    readonly path: string,
    private readonly hf: HfTokenizer,
    json: TokenizerJson,
  ) {
    let maxId = -1;
    for (const id of hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    const eos = hf.token_to_id(EOS_TOKEN);
    if (eos === undefined) throw new TokenizerError(`${path}: no ${EOS_TOKEN} token; not a GPT-NeoX tokenizer`);
    this.eosTokenId = eos;
    this.padTokenId = hf.token_to_id(PAD_TOKEN) ?? eos;
    this.specialIds = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
    this.bytesCache = new Array(this.vocabSize);
    this.textCache = new Array(this.vocabSize);
  }

  encode(text: string): number[] {
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return ''; // the library rejects an empty list
    return this.hf.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** The bytes this token contributes to decoded text (empty for ids the tokenizer does not know). */
  tokenBytes(id: number): Uint8Array {
    if (!(id >= 0 && id < this.vocabSize)) return EMPTY;
    let b = this.bytesCache[id];
    if (b === undefined) {
      const token = this.hf.id_to_token(id);
      b = token === undefined ? EMPTY : byteLevelTokenBytes(token);
      this.bytesCache[id] = b;
    }
    return b;
  }

  /** One token's text as decode([id]) gives it: a piece of a character shows as U+FFFD. */
  tokenText(id: number): string {
    if (!(id >= 0 && id < this.vocabSize)) return '';
    let t = this.textCache[id];
    if (t === undefined) this.textCache[id] = t = this.decode([id]);
    return t;
  }
}

async function resolveTokenizerFile(path: string): Promise<string> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    throw new TokenizerError(`tokenizer file not found: ${path}`);
  }
  if (!isDir) return path;
  const file = join(path, 'tokenizer.json');
  try {
    await stat(file);
  } catch {
    throw new TokenizerError(`tokenizer file not found: no tokenizer.json in ${path}`);
  }
  return file;
}

export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const file = await resolveTokenizerFile(path);
  let json: TokenizerJson;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as TokenizerJson;
  } catch (e) {
    throw new TokenizerError(`${file}: not a tokenizer.json (${(e as Error).message})`);
  }
  // Streaming decode relies on the byte-level decoder (tokenBytes); other tokenizers are not GPT-NeoX's.
  const decoderType = json?.decoder?.type;
  if (decoderType !== 'ByteLevel') {
    throw new TokenizerError(`${file}: decoder is ${decoderType ?? 'missing'}, expected ByteLevel (a GPT-NeoX byte-level BPE tokenizer)`);
  }
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(json, {});
  } catch (e) {
    throw new TokenizerError(`${file}: cannot build the tokenizer (${(e as Error).message})`);
  }
  return new Tokenizer(file, hf, json);
}

/**
 * A tokenizer may be smaller than the model's embedding table (Pythia pads 50277 tokens to 50304
 * rows) but never larger: its ids would index past the table.
 */
export function checkTokenizerFitsModel(tok: Pick<Tokenizer, 'vocabSize'> & { path?: string }, modelVocabSize: number): void {
  if (tok.vocabSize > modelVocabSize) {
    throw new TokenizerError(
      `tokenizer ${tok.path ?? ''} does not fit the model: its vocabulary has ${tok.vocabSize} tokens ` +
        `(ids up to ${tok.vocabSize - 1}) but the model's embedding has ${modelVocabSize} rows`,
    );
  }
}
