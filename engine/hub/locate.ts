// `--model` as a person types it, turned into a local directory the engine loads:
//   an existing path            -> itself (a local directory named like a Hub id wins, as in transformers)
//   a released name             -> the authors' checkpoint in blockserve's cache, pulled first if absent
//   ORG/NAME                    -> the Hub snapshot in the huggingface_hub cache, pulled (or revalidated) first
//   anything else               -> left as is, for the engine's own resolution and its "not found" error
// Serving a name that is not cached downloads it (the same as a Hub id); HF_HUB_OFFLINE=1 turns that
// into an error that says to run `blockserve pull` first.

import { existsSync } from 'node:fs';
import { pullAuthorsModel, type AuthorsPullOptions } from './authors-pull.ts';
import { isReleasedName } from './authors-releases.ts';
import { HubError } from './errors.ts';
import { pullHubModel, REPO_ID_RE, type PullOptions } from './hub-pull.ts';
import type { HubSettings } from './settings.ts';

export type ModelSource = 'path' | 'authors' | 'hub';

export function classifyModel(model: string, exists: (p: string) => boolean = existsSync): ModelSource {
  if (exists(model)) return 'path';
  if (isReleasedName(model)) return 'authors';
  if (REPO_ID_RE.test(model) && !model.startsWith('.')) return 'hub';
  return 'path';
}

export interface LocatedModel {
  path: string;
  /** Name to serve it under when the user gave none (the Hub id or released name); undefined for paths. */
  name?: string;
}

export type LocateOptions = PullOptions & Pick<AuthorsPullOptions, 'url'>;

/** Downloads when needed; returns the local path to hand to the engine as `model`. */
export async function locateModel(model: string, settings: HubSettings, opts: LocateOptions = {}): Promise<LocatedModel> {
  const source = classifyModel(model);
  if (opts.revision !== undefined && source !== 'hub')
    throw new HubError(`--revision applies to Hugging Face Hub ids (ORG/NAME) only, not to '${model}'`);
  if (opts.url !== undefined && source !== 'authors')
    throw new HubError(`--url applies to the authors' released names only, not to '${model}'`);
  if (source === 'path') return { path: model };
  const pulled =
    source === 'hub'
      ? await pullHubModel(model, settings, opts).catch((e: unknown) => {
          // ORG/NAME also reads as a relative path: say that none exists, for whoever meant one.
          if (e instanceof HubError && e.reason === 'not-found')
            throw new HubError(`${e.message}; no local path '${model}' exists either`, e.reason);
          throw e;
        })
      : await pullAuthorsModel(model, settings, opts);
  return { path: pulled.dir, name: pulled.name };
}
