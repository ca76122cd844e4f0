// One validated config tree from flags and BLOCKSERVE_* variables: precedence, lists, errors, help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, helpText, loadConfig, type ServerConfig } from './config.ts';

const load = (argv: string[], env: Record<string, string> = {}) => loadConfig(argv, env) as ServerConfig;

test('defaults', () => {
  const c = load([]);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8000);
  assert.deepEqual(c.engine, {
    model: undefined,
    revision: undefined,
    preset: undefined,
    config: undefined,
    tokenizer: undefined,
    positionMode: undefined,
    padFirstBlock: undefined,
    promptScoring: undefined,
    backend: 'cpu',
    kvCacheMb: 512,
    maxNumSeqs: 64,
    maxQueue: 256,
    computeDtype: 'auto',
    kvDtype: undefined,
    cpuIsa: 'auto',
  });
  const bf16 = load(['--compute-dtype', 'bf16'], { BLOCKSERVE_KV_DTYPE: 'bf16' });
  assert.deepEqual([bf16.engine.computeDtype, bf16.engine.kvDtype], ['bf16', 'bf16']);
  assert.throws(() => load(['--compute-dtype', 'f16']), /compute-dtype/);
  assert.equal(load([], { BLOCKSERVE_CPU_ISA: 'avx2' }).engine.cpuIsa, 'avx2');
  assert.throws(() => load(['--cpu-isa', 'sse4']), /--cpu-isa.*auto, avx512bf16, avx2, portable/);
  assert.deepEqual([c.apiKeys, c.corsOrigins, c.logLevel, c.graceS, c.bodyLimitMb, c.protectMetrics], [[], [], 'info', 30, 4, false]);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.engine) && Object.isFrozen(c.apiKeys));
});

test('flags, env, and flags over env; repeatable lists', () => {
  const env = {
    BLOCKSERVE_PORT: '9000',
    BLOCKSERVE_API_KEY: 'a, b',
    BLOCKSERVE_BACKEND: 'webgpu',
    BLOCKSERVE_PROTECT_METRICS: 'true',
    BLOCKSERVE_GRACE_S: '2.5',
  };
  const fromEnv = load([], env);
  assert.deepEqual(
    [fromEnv.port, fromEnv.apiKeys, fromEnv.engine.backend, fromEnv.protectMetrics, fromEnv.graceS],
    [9000, ['a', 'b'], 'webgpu', true, 2.5],
  );
  assert.equal(load([], { BLOCKSERVE_PROMPT_SCORING: 'decoding' }).engine.promptScoring, 'decoding');
  assert.throws(
    () => load(['--prompt-scoring', 'vllm']),
    (e: unknown) => e instanceof ConfigError && /--prompt-scoring/.test((e as Error).message),
  );
  const both = load(
    ['--port', '9100', '--api-key', 'x', '--api-key', 'y', '--cors-origin', 'https://a.example', '--model', '/m', '--max-num-seqs', '8'],
    env,
  );
  assert.deepEqual(
    [both.port, both.apiKeys, both.corsOrigins, both.engine.model, both.engine.maxNumSeqs],
    [9100, ['x', 'y'], ['https://a.example'], '/m', 8],
  );
});

test('bad values are rejected with the flag named', () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--port', '70000'], {}, /--port/],
    [['--port', 'abc'], {}, /--port/],
    [['--max-num-seqs', '1.5'], {}, /--max-num-seqs/],
    [['--backend', 'cuda'], {}, /--backend \(BLOCKSERVE_BACKEND\): expected one of cpu, webgpu, reference/],
    [['--log-level', 'loud'], {}, /--log-level/],
    [['--cors-origin', 'example.com/path'], {}, /--cors-origin/],
    [['--frobnicate'], {}, /Unknown option '--frobnicate'/],
    [[], { BLOCKSERVE_KV_CACHE_MB: '-1' }, /BLOCKSERVE_KV_CACHE_MB/],
    [[], { BLOCKSERVE_PROTECT_METRICS: 'maybe' }, /BLOCKSERVE_PROTECT_METRICS/],
    [['--fake-engine', '{}'], {}, /Unknown option '--fake-engine'/],
  ];
  for (const [argv, env, re] of cases)
    assert.throws(
      () => loadConfig(argv, env),
      (e: unknown) => e instanceof ConfigError && re.test((e as Error).message),
      argv.join(' '),
    );
});

test('--help lists every public option with its variable, and names no test entry', () => {
  assert.equal(loadConfig(['--help']), 'help');
  const text = helpText();
  for (const flag of [
    '--model',
    '--preset',
    '--config',
    '--tokenizer',
    '--served-model-name',
    '--host',
    '--port',
    '--backend',
    '--kv-cache-mb',
    '--max-num-seqs',
    '--max-queue',
    '--api-key',
    '--cors-origin',
    '--chat-template',
    '--log-level',
    '--grace-s',
    '--body-limit-mb',
  ]) {
    assert.match(text, new RegExp(`${flag}\\b`), flag);
  }
  assert.match(text, /BLOCKSERVE_MAX_QUEUE/);
  assert.doesNotMatch(text, /fake-engine/);
});

test("serve takes the engine's block-model rows: --position-mode and first-block padding, by flag or variable", () => {
  assert.deepEqual(
    [
      load(['--position-mode', 'contiguous', '--no-pad-first-block']).engine.positionMode,
      load(['--no-pad-first-block']).engine.padFirstBlock,
    ],
    ['contiguous', false],
  );
  assert.equal(load(['--pad-first-block']).engine.padFirstBlock, true);
  const env = load([], { BLOCKSERVE_POSITION_MODE: 'reference', BLOCKSERVE_PAD_FIRST_BLOCK: 'false' });
  assert.deepEqual([env.engine.positionMode, env.engine.padFirstBlock], ['reference', false]);
  assert.equal(load(['--pad-first-block'], { BLOCKSERVE_PAD_FIRST_BLOCK: 'false' }).engine.padFirstBlock, true, 'flag over variable');
  assert.throws(
    () => loadConfig(['--position-mode', 'sideways']),
    /--position-mode \(BLOCKSERVE_POSITION_MODE\): expected one of reference, contiguous, got 'sideways'/,
  );
  assert.throws(() => loadConfig(['--pad-first-block', '--no-pad-first-block']), /not both/);
  assert.match(helpText(), /--\[no-\]pad-first-block\s+\[BLOCKSERVE_PAD_FIRST_BLOCK\]/);
  assert.match(helpText(), /--position-mode reference\|contiguous\s+\[BLOCKSERVE_POSITION_MODE\]/);
});
