// Stop strings over a stream of text deltas. Text is released only once no stop string can still
// begin inside it, so emitted deltas never contain a stop string or anything after it, even when the
// stop string arrives split across tokens.
export interface StopPush {
  /** Text that is now safe to emit. */
  text: string;
  /** A stop string matched; `text` ends right before it and nothing more may be emitted. */
  stopped: boolean;
}

export class StopStringMatcher {
  private held = '';
  private readonly stops: string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  push(delta: string): StopPush {
    if (this.stops.length === 0) return { text: delta, stopped: false };
    const text = this.held + delta;
    let first = -1;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) first = i;
    }
    if (first >= 0) {
      this.held = '';
      return { text: text.slice(0, first), stopped: true };
    }
    const keep = this.longestPartialMatch(text);
    this.held = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** End of generation without a match: the text held back is released. */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private longestPartialMatch(text: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, text.length); k > best; k--) {
        if (text.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
