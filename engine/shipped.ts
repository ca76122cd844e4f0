// The two small trained models that ship in models/ (trained by tools/train on Debian's fortunes; see
// each directory's README.md), by the short names --model accepts. `npm start` serves DEFAULT_MODEL.
// They are demos, not the paper's models: the server marks them `demo: true`.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sourcePath } from '../kernels/assets.ts';

/** models/ in the source tree (also from the compiled build in dist/). */
export const MODELS_DIR = sourcePath('../models', import.meta.url);

/** Short name -> directory name under models/. */
export const SHIPPED_MODELS: Readonly<Record<string, string>> = Object.freeze({
  'demo-block': 'blockserve-demo-block-2m',
  'demo-vanilla': 'blockserve-demo-vanilla-2m',
});

export const DEFAULT_MODEL = 'demo-block';

/** The directory of a shipped model named by its short or full name, else undefined. */
export function shippedModelDir(name: string): string | undefined {
  const dir = SHIPPED_MODELS[name] ?? (Object.values(SHIPPED_MODELS).includes(name) ? name : undefined);
  return dir === undefined ? undefined : join(MODELS_DIR, dir);
}

/** What --model means: an existing path wins; otherwise a shipped model's name; otherwise the text as given. */
export function modelPathFor(model: string): string {
  if (existsSync(model)) return model;
  return shippedModelDir(model) ?? model;
}

/** Whether a --model value names (or points at) one of the shipped demo models. */
export function isShippedModel(model: string): boolean {
  const p = resolve(modelPathFor(model));
  return Object.values(SHIPPED_MODELS).some((d) => resolve(MODELS_DIR, d) === p);
}
