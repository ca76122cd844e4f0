// Every command-line option of blockserve, declared once. A row names the flag, its BLOCKSERVE_*
// variable (commands that read the environment), its type, default, help and any extra check; `serve`,
// `generate` and `bench` each take the engine's rows and add their own, and one parser and one help
// printer serve them all (vLLM's EngineArgs is the model: the engine owns its arguments, the front
// ends extend them). Adding an option is adding a row: its field, typed from the row, appears in the
// parsed tree of every command that lists the row, and in that command's --help.
//
// Precedence: flag > environment variable > default. A value that fails its check stops the command
// with an OptionError naming the flag (and the variable, when it came from there).

import { parseArgs } from 'node:util';
import type { FaultPlan } from './faults.ts';
import { PROMPT_SCORINGS } from './config/padding.ts';

export class OptionError extends Error {}

type Kind = 'string' | 'int' | 'number' | 'bool' | 'list' | 'choice';

export interface OptionRow {
  /** Field name in the parsed tree. */
  readonly key: string;
  /** Without the leading dashes. A bool row also accepts --no-<flag>. */
  readonly flag: string;
  /** BLOCKSERVE_* variable; none for options that only make sense per invocation (--prompt, --json). */
  readonly env?: string;
  readonly kind: Kind;
  readonly choices?: readonly string[];
  /** Absent: the field is undefined when not given (the model or the engine decides). */
  readonly default?: string | number | boolean | readonly string[];
  /** Bounds of int and number rows (inclusive). */
  readonly min?: number;
  readonly max?: number;
  /** Extra rule: returns what is wrong with a (parsed) value, or undefined. List rows: per item. */
  readonly check?: (value: never) => string | undefined;
  readonly help: string;
  /** Short alias letter. */
  readonly short?: string;
}

type ValueOf<R> = R extends { kind: 'choice'; choices: readonly (infer C)[] }
  ? C
  : R extends { kind: 'int' | 'number' }
    ? number
    : R extends { kind: 'bool' }
      ? boolean
      : R extends { kind: 'list' }
        ? string[]
        : string;

/** The parsed tree of a list of rows: one field per row, undefined where the row has no default. */
export type Parsed<Rows extends readonly OptionRow[]> = {
  readonly [R in Rows[number] as R['key']]: R extends { default: unknown } ? ValueOf<R> : ValueOf<R> | undefined;
};

const POSITION_MODES = ['reference', 'contiguous'] as const;
export const BACKENDS = ['cpu', 'webgpu', 'reference'] as const;
export const COMPUTE_DTYPES = ['f32', 'bf16', 'auto'] as const;
export const KV_DTYPES = ['f32', 'bf16'] as const;
/** --cpu-isa: auto, or a cap on the native kernels' instruction set (kernels/cpu/backend.ts CPU_ISAS). */
export const CPU_ISA_CHOICES = ['auto', 'avx512bf16', 'avx2', 'portable'] as const;

/** What model to run and how to read it: every command that loads a model takes these. */
export const MODEL_OPTIONS = [
  {
    key: 'model',
    flag: 'model',
    env: 'BLOCKSERVE_MODEL',
    kind: 'string',
    help: "Checkpoint: an HF GPT-NeoX directory, or the authors' safetensors (config beside it); or a Hugging Face Hub id (ORG/NAME) or one of the authors' released names (block_main_b4_85, ...), downloaded into its cache first (see blockserve pull); or a shipped demo model: demo-block | demo-vanilla (models/, trained on fortune cookies, not the paper's). Without it and --preset/--config: demo-block.",
  },
  {
    key: 'revision',
    flag: 'revision',
    env: 'BLOCKSERVE_REVISION',
    kind: 'string',
    help: 'Hub branch, tag or commit of a Hub --model. (default: main)',
  },
  {
    key: 'preset',
    flag: 'preset',
    env: 'BLOCKSERVE_PRESET',
    kind: 'string',
    help: 'Built-in config (random weights without --model): block_main_b4_{5,19,85,300,800,1.2b}, vanilla_{31,70,160,410}.',
  },
  {
    key: 'config',
    flag: 'config',
    env: 'BLOCKSERVE_CONFIG',
    kind: 'string',
    help: "Model config file: the authors' trainer YAML/JSON, or an HF config.json.",
  },
  {
    key: 'tokenizer',
    flag: 'tokenizer',
    env: 'BLOCKSERVE_TOKENIZER',
    kind: 'string',
    help: 'tokenizer.json (default: beside the model, else the built-in GPT-NeoX-20B tokenizer).',
  },
  {
    key: 'positionMode',
    flag: 'position-mode',
    env: 'BLOCKSERVE_POSITION_MODE',
    kind: 'choice',
    choices: POSITION_MODES,
    help: "Block models' rotary positions: reference (the authors' generate()) or contiguous (training's). (default: the model's, reference)",
  },
  {
    key: 'padFirstBlock',
    flag: 'pad-first-block',
    env: 'BLOCKSERVE_PAD_FIRST_BLOCK',
    kind: 'bool',
    help: "Block models: left-pad the prompt with token 0 to a multiple of the block length; --no-pad-first-block turns it off. (default: the model's)",
  },
  {
    key: 'promptScoring',
    flag: 'prompt-scoring',
    env: 'BLOCKSERVE_PROMPT_SCORING',
    kind: 'choice',
    choices: PROMPT_SCORINGS,
    help: "Block models, echo + logprobs: authors (the authors' lm-eval wrappers: training positions, their first-block padding) or decoding (generation's padding and positions). (default authors)",
  },
] as const satisfies readonly OptionRow[];

export const BACKEND_OPTION = {
  key: 'backend',
  flag: 'backend',
  env: 'BLOCKSERVE_BACKEND',
  kind: 'choice',
  choices: BACKENDS,
  default: 'cpu',
  help: 'Kernel backend (cpu is the native SIMD addon).',
} as const satisfies OptionRow;

/** Memory and batching of the engine loop (serving). */
export const ENGINE_OPTIONS = [
  BACKEND_OPTION,
  {
    key: 'kvCacheMb',
    flag: 'kv-cache-mb',
    env: 'BLOCKSERVE_KV_CACHE_MB',
    kind: 'int',
    min: 1,
    max: 1 << 20,
    default: 512,
    help: 'KV-cache memory in MiB.',
  },
  {
    key: 'maxNumSeqs',
    flag: 'max-num-seqs',
    env: 'BLOCKSERVE_MAX_NUM_SEQS',
    kind: 'int',
    min: 1,
    max: 4096,
    default: 64,
    help: 'Sequences decoded concurrently.',
  },
  {
    key: 'maxQueue',
    flag: 'max-queue',
    env: 'BLOCKSERVE_MAX_QUEUE',
    kind: 'int',
    min: 0,
    max: 1 << 20,
    default: 256,
    help: 'Requests waiting beyond max-num-seqs before new ones get 429.',
  },
] as const satisfies readonly OptionRow[];

/**
 * What the CPU backend computes in and stores its KV cache as. Compute defaults to auto (bf16 where the CPU
 * has AVX512_BF16): it met both criteria of the default (block_main_b4_85 1,371.5 vs 757.0 tok/s = 1.81x at
 * 128/512 B=32; perplexity of the shipped trained models moved < 0.01 %: README). Parity checks that go
 * through `serve` pass --compute-dtype f32; the programmatic createLocalEngine stays f32 when absent.
 */
export const COMPUTE_OPTIONS = [
  {
    key: 'computeDtype',
    flag: 'compute-dtype',
    env: 'BLOCKSERVE_COMPUTE_DTYPE',
    kind: 'choice',
    choices: COMPUTE_DTYPES,
    help: 'CPU backend GEMM inputs: f32, bf16 (AVX512_BF16 vdpbf16ps, FP32 sums; weights converted once at load) or auto (bf16 where the CPU has AVX512_BF16, else f32). bf16 on a CPU without it runs f32.',
    default: 'auto',
  },
  {
    key: 'kvDtype',
    flag: 'kv-dtype',
    env: 'BLOCKSERVE_KV_DTYPE',
    kind: 'choice',
    choices: KV_DTYPES,
    help: 'CPU backend KV cache entries: f32 or bf16 (half the bytes decode attention streams, twice the entries per MiB; FP32 sums). (default f32)',
  },
  {
    key: 'cpuIsa',
    flag: 'cpu-isa',
    env: 'BLOCKSERVE_CPU_ISA',
    kind: 'choice',
    choices: CPU_ISA_CHOICES,
    help: "CPU backend kernels: auto (the best this CPU runs) or a cap: avx512bf16, avx2 (the path of CPUs without AVX-512: measure it on one that has it), portable (scalar C++). A cap above the CPU's best runs its best; the 'ready' log and bench print the path in use.",
    default: 'auto',
  },
] as const satisfies readonly OptionRow[];

/** Everything `createLocalEngine` / `createEngine` read from the command line. */
export const ENGINE_ARGS = [...MODEL_OPTIONS, ...ENGINE_OPTIONS, ...COMPUTE_OPTIONS] as const;
export type EngineArgs = Parsed<typeof ENGINE_ARGS>;

export interface ParseOptions {
  /** Where BLOCKSERVE_* variables are read from; rows without `env` never look. */
  env?: Record<string, string | undefined>;
  /** Usage line(s) and intro of this command's help. */
  usage: string;
}

/** Parses argv against rows; returns 'help' for -h/--help. Throws OptionError (with the help text on a bad flag). */
export function parseOptions<Rows extends readonly OptionRow[]>(rows: Rows, argv: string[], opts: ParseOptions): Parsed<Rows> | 'help' {
  const r = parseCommand(rows, argv, opts, []);
  return r === 'help' ? r : r.options;
}

/**
 * `--n -1` as `--n=-1` for the number rows: node's parser reads a value that starts with a dash as an
 * option and answers "argument is ambiguous"; joined, the row's own bounds check names the problem.
 */
function joinNegativeNumbers(rows: readonly OptionRow[], argv: string[]): string[] {
  const numeric = new Set(rows.filter((r) => r.kind === 'int' || r.kind === 'number').map((r) => `--${r.flag}`));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!,
      next = argv[i + 1];
    if (numeric.has(a) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** parseOptions for a command that also takes operands (`pull MODEL`): exactly the named ones, in order. */
export function parseCommand<Rows extends readonly OptionRow[]>(
  rows: Rows,
  argv: string[],
  opts: ParseOptions,
  operands: readonly string[],
): { options: Parsed<Rows>; operands: string[] } | 'help' {
  const env = opts.env ?? {};
  const spec: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const r of rows as readonly OptionRow[]) {
    spec[r.flag] = { type: r.kind === 'bool' ? 'boolean' : 'string', multiple: r.kind === 'list', ...(r.short ? { short: r.short } : {}) };
    if (r.kind === 'bool') spec[`no-${r.flag}`] = { type: 'boolean' };
  }
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: joinNegativeNumbers(rows, argv),
      options: spec,
      strict: true,
      allowPositionals: operands.length > 0,
    }));
  } catch (e) {
    throw new OptionError(`${(e as Error).message}\n\n${helpFor(rows, opts.usage)}`);
  }
  if (values.help) return 'help';
  if (positionals.length !== operands.length) {
    throw new OptionError(
      `expected ${operands.join(' ')}, got ${positionals.length ? positionals.map((p) => `'${p}'`).join(' ') : 'nothing'}\n\n${helpFor(rows, opts.usage)}`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const r of rows as readonly OptionRow[]) out[r.key] = optionValue(r, values, env);
  return { options: Object.freeze(out) as Parsed<Rows>, operands: positionals };
}

function optionValue(r: OptionRow, values: Record<string, unknown>, env: Record<string, string | undefined>): unknown {
  if (r.kind === 'bool' && values[r.flag] !== undefined && values[`no-${r.flag}`] !== undefined) {
    throw new OptionError(`give --${r.flag} or --no-${r.flag}, not both`);
  }
  let raw: unknown = r.kind === 'bool' && values[`no-${r.flag}`] ? false : values[r.flag];
  let from = `--${r.flag}${r.env ? ` (${r.env})` : ''}`;
  if (raw === undefined && r.env) {
    const e = env[r.env];
    if (e !== undefined && e !== '') {
      from = r.env;
      if (r.kind === 'list')
        raw = e
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
      else if (r.kind === 'bool') {
        if (!/^(1|true|yes|0|false|no)$/i.test(e)) throw new OptionError(`${r.env}: expected true or false, got '${e}'`);
        raw = /^(1|true|yes)$/i.test(e);
      } else raw = e;
    }
  }
  if (raw === undefined) return Array.isArray(r.default) ? [...r.default] : r.default;
  const bad = (what: string, v: unknown) => new OptionError(`${from}: expected ${what}, got '${String(v)}'`);
  let v: unknown = raw;
  if (r.kind === 'int' || r.kind === 'number') {
    const n = Number(raw);
    const int = r.kind === 'int';
    const lo = r.min ?? -Number.MAX_SAFE_INTEGER,
      hi = r.max ?? Number.MAX_SAFE_INTEGER;
    if ((raw as string).trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n)) || n < lo || n > hi) {
      const range = r.min !== undefined || r.max !== undefined ? ` in [${r.min ?? '-inf'}, ${r.max ?? 'inf'}]` : '';
      throw bad(`${int ? 'an integer' : 'a number'}${range}`, raw);
    }
    v = n;
  } else if (r.kind === 'choice') {
    if (!r.choices!.includes(raw as string)) throw bad(`one of ${r.choices!.join(', ')}`, raw);
  }
  if (r.check) {
    for (const item of r.kind === 'list' ? (v as unknown[]) : [v]) {
      const problem = (r.check as (x: unknown) => string | undefined)(item);
      if (problem) throw new OptionError(`${from}: ${problem}, got '${String(item)}'`);
    }
  }
  return v;
}

/** The --help text of a command: its usage, then one entry per row with its variable and default. */
export function helpFor(rows: readonly OptionRow[], usage: string): string {
  const lines = [usage.trimEnd(), ''];
  for (const r of rows) {
    const arg =
      r.kind === 'bool'
        ? ''
        : r.kind === 'list'
          ? ' VALUE...'
          : r.kind === 'choice'
            ? ` ${r.choices!.join('|')}`
            : r.kind === 'string'
              ? ' VALUE'
              : ' N';
    // A switch that is off unless given reads as a plain flag; one whose default is the model's shows both forms.
    const plainSwitch = r.kind === 'bool' && r.default === false;
    const name = r.kind === 'bool' && !plainSwitch ? `--[no-]${r.flag}` : `--${r.flag}`;
    const left = `  ${r.short ? `-${r.short}, ` : ''}${name}${arg}`;
    // A long left column still keeps one space before the variable.
    lines.push(r.env ? `${left.padEnd(39)} [${r.env}]` : left);
    const quiet = r.default === undefined || plainSwitch || (Array.isArray(r.default) && r.default.length === 0);
    const def = quiet ? '' : ` (default ${Array.isArray(r.default) ? r.default.join(',') : String(r.default)})`;
    lines.push(`      ${r.help}${def}`);
  }
  lines.push('  -h, --help', '      Show this help.', '');
  return lines.join('\n');
}

/** The model rows as resolveModel (engine/resolve.ts) takes them: every field optional. */
export type ModelRowArgs = Partial<Parsed<typeof MODEL_OPTIONS>>;

/** What builds an engine: the rows above plus what only code sets (the server's name, progress, the bench's dtype). */
export type EngineOptions = ModelRowArgs &
  Parsed<typeof ENGINE_OPTIONS> &
  Partial<Parsed<typeof COMPUTE_OPTIONS>> & {
    /** Name the model is served under (default: preset, config name or directory name). */
    servedModelName?: string;
    /** Token budget per step (chunked prefill); default max(512, maxNumSeqs + 2 * block length). */
    maxBatchTokens?: number;
    /** dtype of random weights (presets without a checkpoint). */
    randomDtype?: 'f32' | 'bf16';
    onProgress?: (done: number, total: number, what: string) => void;
    /** Size the KV cache for this many full-context sequences instead of kvCacheMb (`generate`: one). */
    kvCacheSequences?: number;
    /**
     * Called (instead of failing) when the tokenizer's vocabulary does not fit the model: `generate
     * --prompt-ids` still runs such models (the tiny test fixtures) and prints ids. Local engines only.
     */
    onTokenizerMisfit?: (message: string) => void;
    /** Who applies the admission rule: the loop (default) or the worker client in front of it. */
    admission?: 'loop' | 'caller';
    /** Test hook, off when absent: faults to inject (engine/faults.ts). */
    faults?: FaultPlan;
  };

/** Some rows of a table, by key, keeping their types (a command that takes only part of the model rows). */
export function pick<Rows extends readonly OptionRow[], K extends Rows[number]['key']>(
  rows: Rows,
  ...keys: K[]
): Extract<Rows[number], { key: K }>[] {
  return keys.map((k) => rows.find((r) => r.key === k)!) as Extract<Rows[number], { key: K }>[];
}
