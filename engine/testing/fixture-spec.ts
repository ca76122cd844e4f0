// The model spec a fixture's generate case was recorded with. The fixture writers record some block
// cases with a position mode or a first-block padding other than the checkpoint's own; a case that names
// neither, and every vanilla case, uses the checkpoint's spec unchanged.

import type { ModelSpec } from '../config/spec.ts';

/** The per-case settings a fixture's expected.json may carry beside a generate case. */
export interface FixtureCaseSettings {
  position_mode?: 'reference' | 'contiguous';
  pad_first_block?: boolean;
}

export function specForFixtureCase<S extends ModelSpec>(spec: S, g: FixtureCaseSettings): S {
  if (spec.kind !== 'block') return spec;
  return {
    ...spec,
    positionMode: g.position_mode === 'contiguous' ? 'contiguous' : spec.positionMode,
    padFirstBlock: g.pad_first_block ?? spec.padFirstBlock,
  };
}
