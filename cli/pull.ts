// `blockserve pull NAME`: download a model into its cache without serving it (Hub ids into the
// huggingface_hub cache, the authors' released names into blockserve's). The environment is read here,
// once, and passed down.

import { parseArgs } from 'node:util';
import { humanBytes, type DownloadProgress } from '../engine/hub/download.ts';
import { RELEASED_NAMES } from '../engine/hub/authors-releases.ts';
import { locateModel } from '../engine/hub/locate.ts';
import { hubSettingsFromEnv } from '../engine/hub/settings.ts';
import { OptionError } from '../engine/options.ts';

const USAGE = `Usage: blockserve pull MODEL [--revision R] [--url URL]

MODEL is a Hugging Face Hub id (ORG/NAME, e.g. EleutherAI/pythia-160m) or one of the authors' released
checkpoints: ${RELEASED_NAMES.join(', ')}.

  --revision R   Hub branch, tag or commit (default main)
  --url URL      authors' names only: a direct link (Dropbox / Google Drive file / any URL) to a zip or
                 model.safetensors, instead of the shared-folder link of their README
Environment: HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE=1, BLOCKSERVE_CACHE (see README, "Models").
`;

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

function parseArgsFor(argv: string[]) {
  return parseArgs({ args: argv, options: { revision: { type: 'string' }, url: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
}

export async function runPull(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let parsed: ReturnType<typeof parseArgsFor>;
  try {
    parsed = parseArgsFor(argv);
  } catch (e) {
    throw new OptionError(`${(e as Error).message}\n\n${USAGE}`);
  }
  if (parsed.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) throw new OptionError(`pull takes one MODEL\n\n${USAGE}`);
  const model = parsed.positionals[0]!;
  const settings = hubSettingsFromEnv(env);
  const progress = progressPrinter();
  const located = await locateModel(model, settings, {
    revision: parsed.values.revision,
    url: parsed.values.url,
    onProgress: progress,
    onLog: (line) => {
      progress.end();
      process.stderr.write(`${line}\n`);
    },
  });
  progress.end();
  if (!located.name) throw new OptionError(`'${model}' is a local path, nothing to pull (serve it with --model ${model})`);
  process.stdout.write(`${located.path}\n`);
  process.stderr.write(`pulled ${located.name}; serve it with: blockserve serve --model ${model}${parsed.values.revision ? ` --revision ${parsed.values.revision}` : ''}\n`);
  return 0;
}
