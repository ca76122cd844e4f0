// GPT-2's byte-level alphabet: every byte is written as one printable character in the vocabulary
// (bytes that are printable themselves stay, the rest move to U+0100 and up, e.g. space -> 'Ġ').
// Inverting it gives each token's exact bytes, which the streaming detokenizer feeds to a UTF-8
// decoder so that it can hold back a character split across tokens.

function buildCharToByte(): Map<string, number> {
  const map = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCodePoint(printable ? b : 256 + shifted++), b);
  }
  return map;
}

const CHAR_TO_BYTE = buildCharToByte();
const utf8 = new TextEncoder();

/**
 * The bytes a ByteLevel decoder produces for one token string: each character mapped back to its
 * byte; a token with any character outside the alphabet (added tokens such as '<|endoftext|>' are
 * fine, runs of plain spaces are not) is taken as its own UTF-8, as HF tokenizers' decoder does.
 */
export function byteLevelTokenBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return utf8.encode(token);
    out[n++] = b;
  }
  return out.subarray(0, n);
}
