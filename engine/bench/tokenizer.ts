// Tokenizer speed: `node --import tsx engine/bench/tokenizer.ts`. Prints medians of 5 runs.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IncrementalDetokenizer, loadTokenizer } from '../tokenizer/tokenizer.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const path = fileURLToPath(new URL('../tokenizer/gpt-neox-20b/tokenizer.json', import.meta.url));
const golden = JSON.parse(readFileSync(fileURLToPath(new URL('../../test/fixtures/tokenizer/golden.json', import.meta.url)), 'utf8'));

const loads: number[] = [];
let tok = await loadTokenizer(path);
for (let r = 0; r < 5; r++) {
  const t0 = performance.now();
  tok = await loadTokenizer(path);
  loads.push(performance.now() - t0);
}
console.log(`loadTokenizer: median ${median(loads).toFixed(0)} ms`);

// ~1 MB of mixed text (prose, code, CJK, emoji) from the golden cases.
const unit = golden.encode.map((c: { text: string }) => c.text).join('\n');
const text = unit.repeat(Math.ceil(1e6 / unit.length));
const bytes = Buffer.byteLength(text);
let ids: number[] = [];
const enc: number[] = [],
  dec: number[] = [],
  stream: number[] = [],
  texts: number[] = [];
for (let r = 0; r < 5; r++) {
  let t0 = performance.now();
  ids = tok.encode(text);
  enc.push(performance.now() - t0);
  t0 = performance.now();
  tok.decode(ids);
  dec.push(performance.now() - t0);
  t0 = performance.now();
  const d = new IncrementalDetokenizer(tok);
  for (const id of ids) d.push([id]);
  d.flush();
  stream.push(performance.now() - t0);
  t0 = performance.now();
  for (const id of ids) tok.tokenText(id);
  texts.push(performance.now() - t0);
}
console.log(`text: ${(bytes / 1e6).toFixed(2)} MB, ${ids.length} tokens`);
console.log(`encode: median ${median(enc).toFixed(0)} ms (${(bytes / 1e6 / (median(enc) / 1000)).toFixed(2)} MB/s)`);
console.log(`decode (whole list): median ${median(dec).toFixed(0)} ms`);
console.log(`streaming decode, one token per push: median ${((median(stream) * 1e6) / ids.length).toFixed(0)} ns/token`);
console.log(`tokenText (cached after first use): median ${((median(texts) * 1e6) / ids.length).toFixed(0)} ns/token`);
