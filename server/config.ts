// `blockserve serve` configuration: the engine's option rows (engine/options.ts) plus the server's own,
// from CLI flags and BLOCKSERVE_* environment variables, validated once at start into one frozen tree
// that is passed down explicitly (nothing else in server/ reads process.env). Precedence: flag >
// environment > default.
import { ENGINE_ARGS, helpFor, OptionError, parseOptions, type EngineArgs, type OptionRow, type Parsed } from '../engine/options.ts';

export { OptionError as ConfigError };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const SERVER_OPTIONS = [
  {
    key: 'servedModelName',
    flag: 'served-model-name',
    env: 'BLOCKSERVE_SERVED_MODEL_NAME',
    kind: 'string',
    help: "Model name clients send and see (default: the model's name).",
    check: (v: string) => (/^\S{1,256}$/.test(v) ? undefined : '1-256 characters, no whitespace'),
  },
  { key: 'host', flag: 'host', env: 'BLOCKSERVE_HOST', kind: 'string', default: '127.0.0.1', help: 'Address to listen on.' },
  {
    key: 'port',
    flag: 'port',
    env: 'BLOCKSERVE_PORT',
    kind: 'int',
    min: 0,
    max: 65535,
    default: 8000,
    help: 'Port to listen on; 0 picks a free one.',
  },
  {
    key: 'apiKeys',
    flag: 'api-key',
    env: 'BLOCKSERVE_API_KEY',
    kind: 'list',
    default: [],
    help: 'Require `Authorization: Bearer KEY` on /v1/*, /tokenize, /detokenize. Repeatable; env: comma-separated.',
    check: (k: string) => (k.length >= 1 && !/\s/.test(k) ? undefined : 'keys must be non-empty and contain no whitespace'),
  },
  {
    key: 'protectMetrics',
    flag: 'protect-metrics',
    env: 'BLOCKSERVE_PROTECT_METRICS',
    kind: 'bool',
    default: false,
    help: 'Also require the API key on /metrics and /openapi.json.',
  },
  {
    key: 'corsOrigins',
    flag: 'cors-origin',
    env: 'BLOCKSERVE_CORS_ORIGIN',
    kind: 'list',
    default: [],
    help: 'Allowed browser origin ("*" for any). Repeatable; env: comma-separated. (default: CORS off)',
    check: (o: string) =>
      o === '*' || /^https?:\/\/[^/\s]+$/.test(o) ? undefined : 'expected "*" or an origin like https://example.com (no path)',
  },
  {
    key: 'chatTemplateFile',
    flag: 'chat-template',
    env: 'BLOCKSERVE_CHAT_TEMPLATE',
    kind: 'string',
    help: 'Jinja chat template file (default: a plain "User:/Assistant:" template for base models).',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'BLOCKSERVE_LOG_LEVEL',
    kind: 'choice',
    choices: LOG_LEVELS,
    default: 'info',
    help: 'Log level.',
  },
  {
    key: 'graceS',
    flag: 'grace-s',
    env: 'BLOCKSERVE_GRACE_S',
    kind: 'number',
    min: 0,
    max: 86400,
    default: 30,
    help: 'On SIGTERM/SIGINT: seconds in-flight requests may finish before being aborted.',
  },
  {
    key: 'bodyLimitMb',
    flag: 'body-limit-mb',
    env: 'BLOCKSERVE_BODY_LIMIT_MB',
    kind: 'number',
    min: 0.001,
    max: 1024,
    default: 4,
    help: 'Largest request body in MiB; larger ones get 413.',
  },
  {
    key: 'sseKeepaliveS',
    flag: 'sse-keepalive-s',
    env: 'BLOCKSERVE_SSE_KEEPALIVE_S',
    kind: 'number',
    min: 0.01,
    max: 3600,
    default: 10,
    help: 'Seconds between keep-alive comments while a streamed request is queued.',
  },
] as const satisfies readonly OptionRow[];

/** Every row of `serve`: the engine's, then the server's. */
export const SERVE_OPTIONS = [...ENGINE_ARGS, ...SERVER_OPTIONS] as const;

const USAGE =
  'Usage: blockserve serve [options]\n\nServes an OpenAI-compatible API (see README.md, "Serving"). Every option can also be set by its environment variable.';

type ServerFields = Omit<Parsed<typeof SERVE_OPTIONS>, keyof EngineArgs>;

export interface ServerConfig extends ServerFields {
  /** What the engine is built from (engine/options.ts), passed to createEngine as is. */
  readonly engine: EngineArgs;
}

export function helpText(): string {
  return helpFor(SERVE_OPTIONS, USAGE);
}

/** Parses and validates; throws ConfigError (engine/options.ts's OptionError) with a message a person can act on. */
export function loadConfig(argv: string[], env: Record<string, string | undefined> = {}): ServerConfig | 'help' {
  const parsed = parseOptions(SERVE_OPTIONS, argv, { env, usage: USAGE });
  if (parsed === 'help') return 'help';
  const engine: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  const engineKeys = new Set<string>(ENGINE_ARGS.map((r) => r.key));
  for (const [k, v] of Object.entries(parsed)) (engineKeys.has(k) ? engine : rest)[k] = v;
  return deepFreeze({ ...rest, engine } as unknown as ServerConfig);
}

/** Config for tests and embedders: the defaults with some fields replaced. */
export function defaultConfig(
  overrides: Partial<Omit<ServerConfig, 'engine'>> & { engine?: Partial<ServerConfig['engine']> } = {},
): ServerConfig {
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
