// Seeded random numbers for reproducible load: the same --seed gives the same prompts, lengths and
// arrival times, so two servers can be compared on identical traffic.

/** sfc32: small, fast, good enough statistically for traffic shaping (not for cryptography). */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    // Spread the seed over the four words with splitmix32 so nearby seeds give unrelated streams.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** Standard normal (Marsaglia polar method; the second value is kept for the next call). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    for (;;) {
      const u = 2 * this.float() - 1;
      const v = 2 * this.float() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const m = Math.sqrt((-2 * Math.log(s)) / s);
        this.spareNormal = v * m;
        return u * m;
      }
    }
  }

  /** Gamma(shape, scale=1) by Marsaglia and Tsang; shape < 1 uses the U^(1/shape) boost. */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new Error(`gamma shape must be > 0, got ${shape}`);
    if (shape < 1) {
      const u = 1 - this.float(); // (0, 1]
      return this.gamma(shape + 1) * u ** (1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.float();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
    }
  }
}

/**
 * Inter-arrival gaps (seconds) for an open-loop load at `rate` requests/s. burstiness = 1 is a
 * Poisson process (exponential gaps); < 1 is burstier, > 1 more regular; the mean is always 1/rate
 * (gamma with shape = burstiness and scale = 1 / (rate * burstiness), as vLLM's benchmark does).
 */
export function nextGapSeconds(rng: Rng, rate: number, burstiness: number): number {
  return rng.gamma(burstiness) / (rate * burstiness);
}
