// The CPU addon's sampling passes (src/sampling.cc): the same arithmetic as the JavaScript reference
// (../reference/sampling.ts) in the same order, there to take the sampler's full-vocabulary scans off the
// JavaScript interpreter. backend.ts hands the loaded addon in (nativeSamplingPasses there).

import { SAMPLING_CONSTANTS, type SamplingPasses } from '../sampling.ts';

interface SamplingAddon extends SamplingPasses {
  samplingSetup(table: Float64Array, scale: number, ln2Step: number, limit: number, bucketsPerNat: number, numBuckets: number): void;
}

let ready: SamplingPasses | undefined;

/** The addon's passes, set up with the shared constants on first call (the addon keeps them globally). */
export function addonSamplingPasses(addon: unknown): SamplingPasses {
  if (ready) return ready;
  const a = addon as SamplingAddon;
  const c = SAMPLING_CONSTANTS;
  a.samplingSetup(c.expTable, c.expScale, c.expLn2Step, c.expLimit, c.bucketsPerNat, c.numBuckets);
  return (ready = a);
}
