// `blockserve serve` configuration: CLI flags and BLOCKSERVE_* environment variables, validated once at
// start into one frozen tree that is passed down explicitly (nothing else in server/ reads process.env).
// Precedence: flag > environment > default.
import { parseArgs } from 'node:util';

export class ConfigError extends Error {}

export type BackendName = 'cpu' | 'webgpu' | 'reference';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerConfig {
  engine: {
    model?: string;
    preset?: string;
    config?: string;
    tokenizer?: string;
    backend: BackendName;
    computeDtype: 'f32' | 'bf16' | 'auto';
    kvDtype: 'f32' | 'bf16';
    kvCacheMb: number;
    maxNumSeqs: number;
    maxQueue: number;
  };
  /** Name clients use in `model`; defaults to the engine's model name. */
  servedModelName?: string;
  host: string;
  port: number;
  apiKeys: string[];
  /** Also require the key on /metrics and /openapi.json (health and readiness stay open for probes). */
  protectMetrics: boolean;
  corsOrigins: string[];
  chatTemplateFile?: string;
  logLevel: LogLevel;
  graceS: number;
  bodyLimitMb: number;
  /** Seconds between `:` keep-alive comments on an SSE stream whose request is still queued. */
  sseKeepaliveS: number;
  /** Hidden, for tests: JSON options of server/testing/fake-engine.ts instead of a real engine. */
  fakeEngine?: string;
}

interface OptionSpec {
  flag: string;
  env: string;
  kind: 'string' | 'int' | 'number' | 'list' | 'bool';
  help: string;
  hidden?: boolean;
}

const OPTIONS: OptionSpec[] = [
  { flag: 'model', env: 'BLOCKSERVE_MODEL', kind: 'string', help: 'Model directory (safetensors + config). Without it: the built-in demo model.' },
  { flag: 'preset', env: 'BLOCKSERVE_PRESET', kind: 'string', help: 'Named architecture preset (e.g. block_main_b4_85).' },
  { flag: 'config', env: 'BLOCKSERVE_CONFIG', kind: 'string', help: "Model config file (HF config.json or the authors' YAML)." },
  { flag: 'tokenizer', env: 'BLOCKSERVE_TOKENIZER', kind: 'string', help: 'tokenizer.json to use instead of the model directory\'s.' },
  { flag: 'served-model-name', env: 'BLOCKSERVE_SERVED_MODEL_NAME', kind: 'string', help: 'Model name clients send and see (default: the model\'s name).' },
  { flag: 'host', env: 'BLOCKSERVE_HOST', kind: 'string', help: 'Address to listen on. (default 127.0.0.1)' },
  { flag: 'port', env: 'BLOCKSERVE_PORT', kind: 'int', help: 'Port to listen on; 0 picks a free one. (default 8000)' },
  { flag: 'backend', env: 'BLOCKSERVE_BACKEND', kind: 'string', help: 'Kernel backend: cpu | webgpu | reference. (default cpu)' },
  { flag: 'compute-dtype', env: 'BLOCKSERVE_COMPUTE_DTYPE', kind: 'string', help: 'CPU GEMM inputs: f32 | bf16 (AVX512_BF16, FP32 sums) | auto (bf16 where the CPU has it). (default f32)' },
  { flag: 'kv-dtype', env: 'BLOCKSERVE_KV_DTYPE', kind: 'string', help: 'CPU KV cache entries: f32 | bf16 (half the bytes for decode attention). (default f32)' },
  { flag: 'kv-cache-mb', env: 'BLOCKSERVE_KV_CACHE_MB', kind: 'int', help: 'KV-cache memory in MiB. (default 512)' },
  { flag: 'max-num-seqs', env: 'BLOCKSERVE_MAX_NUM_SEQS', kind: 'int', help: 'Sequences decoded concurrently. (default 64)' },
  { flag: 'max-queue', env: 'BLOCKSERVE_MAX_QUEUE', kind: 'int', help: 'Requests waiting beyond max-num-seqs before new ones get 429. (default 256)' },
  { flag: 'api-key', env: 'BLOCKSERVE_API_KEY', kind: 'list', help: 'Require `Authorization: Bearer KEY` on /v1/*, /tokenize, /detokenize. Repeatable; env: comma-separated.' },
  { flag: 'protect-metrics', env: 'BLOCKSERVE_PROTECT_METRICS', kind: 'bool', help: 'Also require the API key on /metrics and /openapi.json.' },
  { flag: 'cors-origin', env: 'BLOCKSERVE_CORS_ORIGIN', kind: 'list', help: 'Allowed browser origin ("*" for any). Repeatable; env: comma-separated. (default: CORS off)' },
  { flag: 'chat-template', env: 'BLOCKSERVE_CHAT_TEMPLATE', kind: 'string', help: 'Jinja chat template file (default: a plain "User:/Assistant:" template for base models).' },
  { flag: 'log-level', env: 'BLOCKSERVE_LOG_LEVEL', kind: 'string', help: 'fatal | error | warn | info | debug | trace | silent. (default info)' },
  { flag: 'grace-s', env: 'BLOCKSERVE_GRACE_S', kind: 'number', help: 'On SIGTERM/SIGINT: seconds in-flight requests may finish before being aborted. (default 30)' },
  { flag: 'body-limit-mb', env: 'BLOCKSERVE_BODY_LIMIT_MB', kind: 'number', help: 'Largest request body in MiB; larger ones get 413. (default 4)' },
  { flag: 'sse-keepalive-s', env: 'BLOCKSERVE_SSE_KEEPALIVE_S', kind: 'number', help: 'Seconds between keep-alive comments while a streamed request is queued. (default 10)' },
  { flag: 'fake-engine', env: 'BLOCKSERVE_FAKE_ENGINE', kind: 'string', help: 'Test only: serve the scripted fake engine with these JSON options.', hidden: true },
];

export function helpText(): string {
  const lines = ['Usage: blockserve serve [options]', '', 'Serves an OpenAI-compatible API (see README.md, "Serving"). Every option can also be set by its environment variable.', ''];
  for (const o of OPTIONS) {
    if (o.hidden) continue;
    const arg = o.kind === 'bool' ? '' : o.kind === 'list' ? ' VALUE...' : ` ${o.kind === 'string' ? 'VALUE' : 'N'}`;
    lines.push(`  --${o.flag}${arg}`.padEnd(32) + `[${o.env}]`);
    lines.push(`      ${o.help}`);
  }
  lines.push('  -h, --help', '      Show this help.', '');
  return lines.join('\n');
}

/** Parses and validates; throws ConfigError with a message a person can act on. */
export function loadConfig(argv: string[], env: Record<string, string | undefined> = {}): ServerConfig | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const o of OPTIONS) options[o.flag] = { type: o.kind === 'bool' ? 'boolean' : 'string', multiple: o.kind === 'list' };
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\n\n${helpText()}`);
  }
  if (values.help) return 'help';

  const raw = (o: OptionSpec): unknown => {
    if (values[o.flag] !== undefined) return values[o.flag];
    const e = env[o.env];
    if (e === undefined || e === '') return undefined;
    if (o.kind === 'list') return e.split(',').map((s) => s.trim()).filter(Boolean);
    if (o.kind === 'bool') {
      if (!/^(1|true|yes|0|false|no)$/i.test(e)) throw new ConfigError(`${o.env}: expected true or false, got '${e}'`);
      return /^(1|true|yes)$/i.test(e);
    }
    return e;
  };
  const spec = (flag: string) => OPTIONS.find((o) => o.flag === flag)!;
  const str = (flag: string): string | undefined => raw(spec(flag)) as string | undefined;
  const list = (flag: string): string[] => (raw(spec(flag)) as string[] | undefined) ?? [];
  const bool = (flag: string): boolean => Boolean(raw(spec(flag)));
  const num = (flag: string, def: number, min: number, max: number, integer: boolean): number => {
    const v = raw(spec(flag));
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      throw new ConfigError(`--${flag} (${spec(flag).env}): expected ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${v}'`);
    }
    return n;
  };
  const oneOf = <T extends string>(flag: string, allowed: readonly T[], def: T): T => {
    const v = str(flag) ?? def;
    if (!allowed.includes(v as T)) throw new ConfigError(`--${flag} (${spec(flag).env}): expected one of ${allowed.join(', ')}, got '${v}'`);
    return v as T;
  };

  const apiKeys = list('api-key');
  for (const k of apiKeys) if (k.length < 1 || /\s/.test(k)) throw new ConfigError('--api-key: keys must be non-empty and contain no whitespace');
  const corsOrigins = list('cors-origin');
  for (const o of corsOrigins) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) throw new ConfigError(`--cors-origin: expected "*" or an origin like https://example.com (no path), got '${o}'`);
  }

  const cfg: ServerConfig = {
    engine: {
      model: str('model'),
      preset: str('preset'),
      config: str('config'),
      tokenizer: str('tokenizer'),
      backend: oneOf('backend', ['cpu', 'webgpu', 'reference'] as const, 'cpu'),
      computeDtype: oneOf('compute-dtype', ['f32', 'bf16', 'auto'] as const, 'f32'),
      kvDtype: oneOf('kv-dtype', ['f32', 'bf16'] as const, 'f32'),
      kvCacheMb: num('kv-cache-mb', 512, 1, 1 << 20, true),
      maxNumSeqs: num('max-num-seqs', 64, 1, 4096, true),
      maxQueue: num('max-queue', 256, 0, 1 << 20, true),
    },
    servedModelName: str('served-model-name'),
    host: str('host') ?? '127.0.0.1',
    port: num('port', 8000, 0, 65535, true),
    apiKeys,
    protectMetrics: bool('protect-metrics'),
    corsOrigins,
    chatTemplateFile: str('chat-template'),
    logLevel: oneOf('log-level', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    graceS: num('grace-s', 30, 0, 86400, false),
    bodyLimitMb: num('body-limit-mb', 4, 0.001, 1024, false),
    sseKeepaliveS: num('sse-keepalive-s', 10, 0.01, 3600, false),
    fakeEngine: str('fake-engine'),
  };
  if (cfg.servedModelName !== undefined && !/^\S{1,256}$/.test(cfg.servedModelName)) {
    throw new ConfigError('--served-model-name: 1-256 characters, no whitespace');
  }
  if (cfg.fakeEngine !== undefined) {
    try {
      JSON.parse(cfg.fakeEngine);
    } catch {
      throw new ConfigError('--fake-engine: expected a JSON object');
    }
  }
  return deepFreeze(cfg);
}

/** Config for tests and embedders: the defaults with some fields replaced. */
export function defaultConfig(overrides: Partial<Omit<ServerConfig, 'engine'>> & { engine?: Partial<ServerConfig['engine']> } = {}): ServerConfig {
  const base = loadConfig([]) as ServerConfig;
  return deepFreeze({ ...base, ...overrides, engine: { ...base.engine, ...overrides.engine } });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
