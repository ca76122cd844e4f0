// A tiny tokenizer for engine tests: token id -> a fixed piece of text. Pieces of several characters
// let tests split a stop string across tokens. Id 0 is the end-of-text token and renders as ''.
import type { TokenizerLike } from '../api.ts';
import type { DetokenizerFactory } from '../loop/engine-loop.ts';

export const DEFAULT_PIECES: readonly string[] = (() => {
  const p = [''];
  for (let c = 97; c <= 122; c++) p.push(String.fromCharCode(c)); // 1..26: a..z
  p.push(' ', 'th', 'he', 'in', 'er', 'an', '</', 's>', '\n', '.', ',', 'ST', 'OP', 'STOP', 'é', '🙂');
  while (p.length < 64) p.push(`<${p.length}>`);
  return p;
})();

export class FakeTokenizer implements TokenizerLike {
  readonly vocabSize: number;
  constructor(readonly pieces: readonly string[] = DEFAULT_PIECES) {
    this.vocabSize = pieces.length;
  }

  /** Greedy longest match over the pieces (id 0 excluded). */
  encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    while (i < text.length) {
      let best = -1;
      for (let id = 1; id < this.pieces.length; id++) {
        const p = this.pieces[id];
        if (p.length > 0 && text.startsWith(p, i) && (best < 0 || p.length > this.pieces[best].length)) best = id;
      }
      if (best < 0) throw new Error(`fake tokenizer cannot encode ${JSON.stringify(text[i])}`);
      ids.push(best);
      i += this.pieces[best].length;
    }
    return ids;
  }

  decode(ids: number[]): string {
    return ids.map((id) => this.pieces[id] ?? '').join('');
  }

  /** Ids of pieces, looked up by text (tests write expected outputs as text). */
  id(piece: string): number {
    const id = this.pieces.indexOf(piece);
    if (id < 0) throw new Error(`no piece ${JSON.stringify(piece)}`);
    return id;
  }
}

/** Whole pieces are whole characters here, so streaming decode is just decode. */
export function fakeDetokenizerFactory(tok: TokenizerLike): DetokenizerFactory {
  return () => ({ push: (ids) => tok.decode(ids), flush: () => '' });
}
