// `blockserve pull NAME`: download a model into its cache without serving it (Hub ids into the
// huggingface_hub cache, the authors' released names into blockserve's). The environment is read here,
// once, and passed down.

import { humanBytes, type DownloadProgress } from '../engine/hub/download.ts';
import { RELEASED_NAMES } from '../engine/hub/authors-releases.ts';
import { locateModel } from '../engine/hub/locate.ts';
import { hubSettingsFromEnv } from '../engine/hub/settings.ts';
import { helpFor, MODEL_OPTIONS, OptionError, parseCommand, pick, type OptionRow } from '../engine/options.ts';

export const PULL_ROWS = [
  ...pick(MODEL_OPTIONS, 'revision'),
  {
    key: 'url',
    flag: 'url',
    kind: 'string',
    help: "Authors' names only: a direct link (Dropbox / Google Drive file / any URL) to a zip or model.safetensors, instead of the shared-folder link of their README.",
  },
] as const satisfies readonly OptionRow[];

const USAGE = `Usage: blockserve pull MODEL [--revision R] [--url URL]

MODEL is a Hugging Face Hub id (ORG/NAME, e.g. EleutherAI/pythia-160m) or one of the authors' released
checkpoints: ${RELEASED_NAMES.join(', ')}.
Environment: HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE=1, BLOCKSERVE_CACHE (see README, "Models").`;

/** A bar on a terminal; otherwise a line per file every 10% (logs stay readable). */
export function progressPrinter(out: NodeJS.WriteStream = process.stderr): ((p: DownloadProgress) => void) & { end(): void } {
  const tty = out.isTTY === true;
  let last = { label: '', tenth: -1 };
  let drew = false;
  const print = (p: DownloadProgress) => {
    const frac = p.total ? Math.min(1, p.done / p.total) : undefined;
    const size = `${humanBytes(p.done)}${p.total ? ` / ${humanBytes(p.total)}` : ''}`;
    if (tty) {
      const width = 30;
      const filled = frac === undefined ? 0 : Math.round(frac * width);
      out.write(`\r${p.label.slice(0, 28).padEnd(28)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${size.padEnd(24)}`);
      drew = true;
      return;
    }
    const tenth = frac === undefined ? Math.floor(p.done / 2 ** 28) : Math.floor(frac * 10);
    if (p.label !== last.label || tenth !== last.tenth) out.write(`${p.label}: ${frac === undefined ? '' : `${tenth * 10}% `}${size}\n`);
    last = { label: p.label, tenth };
  };
  return Object.assign(print, {
    end() {
      if (drew) out.write('\n');
      drew = false;
    },
  });
}

export async function runPull(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const parsed = parseCommand(PULL_ROWS, argv, { env, usage: USAGE }, ['MODEL']);
  if (parsed === 'help') {
    process.stdout.write(helpFor(PULL_ROWS, USAGE));
    return 0;
  }
  const o = parsed.options;
  const model = parsed.operands[0]!;
  const settings = hubSettingsFromEnv(env);
  const progress = progressPrinter();
  const located = await locateModel(model, settings, {
    revision: o.revision,
    url: o.url,
    onProgress: progress,
    onLog: (line) => {
      progress.end();
      process.stderr.write(`${line}\n`);
    },
  });
  progress.end();
  if (!located.name) throw new OptionError(`'${model}' is a local path, nothing to pull (serve it with --model ${model})`);
  process.stdout.write(`${located.path}\n`);
  process.stderr.write(
    `pulled ${located.name}; serve it with: blockserve serve --model ${model}${o.revision ? ` --revision ${o.revision}` : ''}\n`,
  );
  return 0;
}
