// The authors' released checkpoints: which names exist, where their README (github.com/itsnamgyu/
// block-transformer at commit 17842dd, section "Pretrained Checkpoints") says they are, and the config
// written beside each model.safetensors (the engine's built-in copy of their trainer config).
//
// The README gives two folder links, not one per model: a Dropbox shared folder and a Google Drive
// folder, unpacked as results/<name>/checkpoint-<step>/model.safetensors. Dropbox documents `dl=1` on a
// shared link as "download instead of preview"; on a folder it answers with a .zip of the folder (after a
// redirect to its download host). Google Drive folders have no download URL outside a browser, so the
// Drive link is listed for people, and `pull --url` accepts a Drive *file* link (or any direct link).

import { authorsTreeForPreset, hfConfigForPreset } from '../config/presets.ts';
import { HubError } from './errors.ts';

export const AUTHORS_README = 'https://github.com/itsnamgyu/block-transformer/blob/17842dd/README.md#-pretrained-checkpoints';
export const AUTHORS_DROPBOX =
  'https://www.dropbox.com/scl/fo/7l7ga148gcc39ykdcqndd/AFw4Fk1XbaABFc-IuAzoyQc?rlkey=zn6cqua65wj835kkifbolr4dj&st=qcjfy53c&dl=0';
export const AUTHORS_GDRIVE = 'https://drive.google.com/drive/folders/1NjdYIBEsgnEWe4TgGvyJC2emOVc8i4Bw?usp=share_link';

export interface Release {
  name: string;
  /** Written beside model.safetensors: the authors' trainer YAML for block models, an HF config.json for vanilla. */
  configFile: 'config.yaml' | 'config.json';
  config: Record<string, unknown>;
}

/** "All checkpoints of our main models": the block_main_* presets and the vanilla baselines. */
export const RELEASED_NAMES = [
  'block_main_b4_5',
  'block_main_b4_19',
  'block_main_b4_85',
  'block_main_b4_300',
  'block_main_b4_800',
  'block_main_b4_1.2b',
  'vanilla_31',
  'vanilla_70',
  'vanilla_160',
  'vanilla_410',
] as const;

export function releaseByName(name: string): Release | undefined {
  if (!(RELEASED_NAMES as readonly string[]).includes(name)) return undefined;
  const block = authorsTreeForPreset(name);
  if (block) return { name, configFile: 'config.yaml', config: block };
  const hf = hfConfigForPreset(name);
  return hf ? { name, configFile: 'config.json', config: hf } : undefined;
}

export function isReleasedName(name: string): boolean {
  return releaseByName(name) !== undefined;
}

/**
 * The URL that returns bytes rather than a preview page: Dropbox links get dl=1; a Drive file link
 * (…/file/d/ID/…, open?id=ID) becomes uc?export=download&id=ID. A Drive folder cannot be fetched.
 */
export function directDownloadUrl(link: string): string {
  let u: URL;
  try {
    u = new URL(link);
  } catch {
    throw new HubError(`not a URL: ${link}`, 'archive');
  }
  if (/(^|\.)dropbox\.com$/.test(u.hostname)) {
    u.searchParams.set('dl', '1');
    return u.href;
  }
  if (u.hostname === 'drive.google.com') {
    if (u.pathname.startsWith('/drive/folders/')) {
      throw new HubError(
        `${link} is a Google Drive folder, which cannot be downloaded outside a browser: use the Dropbox link ` +
          '(the default), or pass --url with a link to one file (a zip or model.safetensors)',
        'archive',
      );
    }
    const id = /\/file\/d\/([\w-]+)/.exec(u.pathname)?.[1] ?? u.searchParams.get('id');
    if (!id) throw new HubError(`cannot find a file id in the Google Drive link ${link}`, 'archive');
    return `https://drive.google.com/uc?export=download&id=${encodeURIComponent(id)}`;
  }
  return u.href;
}
