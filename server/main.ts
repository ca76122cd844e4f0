// `blockserve serve`: CLI -> config -> listen (health and readiness answer at once) -> load the engine
// with progress -> ready -> on SIGTERM/SIGINT drain -> exit 0. The engine module is imported
// dynamically so that tests and `--fake-engine` runs never load it.
// A dead engine (a step threw, the worker exited, the device ran out of memory) is not restarted in
// place: its in-flight requests have already ended with engine_dead errors, /health and /ready turn
// 503, the reason is logged once, and the process exits 1 after the responses are written (within
// --grace-s). A fresh process is the one state known to be clean (a device that failed an allocation
// or a worker that crashed mid-kernel may hold anything); the orchestrator's restart does that.
import { readFileSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { Engine } from '../engine/api.ts';
import { buildApp } from './app.ts';
import { ChatTemplate } from './chat-template.ts';
import { ConfigError, helpText, loadConfig, type ServerConfig } from './config.ts';
import type { LoadProgress } from './state.ts';

/** Seconds an aborted request may take to deliver its finish before the process exits anyway. */
const ABORT_SETTLE_S = 5;
/** Seconds a server whose engine died keeps answering 503 before it exits 1. */
const FAILURE_LINGER_S = 1;

/** Test-only inputs that no flag or environment variable of `blockserve serve` can set. */
export interface ServeTestHooks {
  /** Faults to inject into the engine (engine/faults.ts). */
  faults?: Record<string, number>;
  /** Serve this engine instead of loading a model (tests: the scripted fake engine). */
  engine?: () => Promise<Engine>;
}

export async function runServe(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
  hooks: ServeTestHooks = {},
): Promise<number> {
  const loaded = loadConfig(argv, env);
  if (loaded === 'help') {
    process.stdout.write(helpText());
    return 0;
  }
  const config: ServerConfig = loaded;
  if (config.chatTemplateFile) {
    try {
      new ChatTemplate(readFileSync(config.chatTemplateFile, 'utf8'));
    } catch (e) {
      throw new ConfigError(`--chat-template ${config.chatTemplateFile}: ${(e as Error).message}`);
    }
  }
  const log = pino({ level: config.logLevel, base: { pid: process.pid } });
  const { app, state } = await buildApp(config, { logger: log });

  let stopping: Promise<void> | null = null;
  /** 0 after a signal's drain, 1 after the engine died. */
  let exitCode = 0;
  const stopped = new Promise<void>((resolveStopped) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: aborting every request now');
        state.abortAll();
        return;
      }
      stopping = drain(signal, 0).then(resolveStopped, (err) => {
        log.error({ err }, 'shutdown failed');
        resolveStopped();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    state.onEngineFailure((reason) => {
      log.fatal({ reason, graceS: config.graceS }, 'engine died: failing /health and /ready, exiting with code 1');
      stopping ??= drain('engine_failure', 1).then(resolveStopped, (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
    });
  });

  async function drain(signal: string, code: number): Promise<void> {
    exitCode = code;
    state.draining = true;
    log.info({ signal, inFlight: state.inFlight.size, graceS: config.graceS }, 'draining: not ready, new requests get 503');
    const graceOver = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.graceS * 1000).unref());
    if ((await Promise.race([state.idle().then(() => 'idle' as const), graceOver])) === 'timeout') {
      log.warn({ aborting: state.inFlight.size }, 'grace period over: aborting the rest');
      state.abortAll();
      await Promise.race([state.idle(), new Promise((r) => setTimeout(r, ABORT_SETTLE_S * 1000).unref())]);
    }
    // Let the last chunks, finish reasons and [DONE] frames reach the clients before connections close.
    await Promise.race([state.responsesDone(), new Promise((r) => setTimeout(r, ABORT_SETTLE_S * 1000).unref())]);
    // A dead engine: keep answering 503 (health, readiness, requests) a moment so probes and load
    // balancers see why, instead of only a refused connection.
    if (code !== 0) await new Promise((r) => setTimeout(r, Math.min(FAILURE_LINGER_S, config.graceS) * 1000).unref());
    await app.close();
    await state.engine?.close();
    log.info({ exitCode: code }, 'stopped');
    // Anything still holding the event loop open must not keep a stopped server alive.
    setTimeout(() => process.exit(code), 1000).unref();
  }

  await app.listen({ host: config.host, port: config.port });
  const engine = await loadEngine(config, env, log, (p) => (state.loadProgress = p), hooks).catch(async (err) => {
    await app.close();
    throw err;
  });
  if (state.draining) {
    await engine.close();
  } else {
    state.engine = engine;
    state.loadProgress = null;
    const { info } = engine;
    log.info(
      { model: state.servedModelName, kind: info.kind, contextLength: info.contextLength, demo: info.demo, compute: info.compute },
      'ready',
    );
    if (info.demo)
      log.warn("serving a small demo model trained on fortune cookies (models/, not the paper's): pass --model for a real checkpoint");
  }
  await stopped;
  return exitCode;
}

async function loadEngine(
  config: ServerConfig,
  env: Record<string, string | undefined>,
  log: Logger,
  onState: (p: LoadProgress) => void,
  hooks: ServeTestHooks,
): Promise<Engine> {
  if (hooks.engine) {
    log.warn('serving an engine handed in by a test entry (test mode)');
    return hooks.engine();
  }
  const progress = progressReporter(log);
  const located = await locateModelForServe(config, env, log, (done, total, what) => {
    onState({ done, total, what });
    progress(done, total, what);
  });
  const { createEngine } = await import('../engine/create.ts');
  const engine = await createEngine({
    ...config.engine,
    model: located.path,
    servedModelName: config.servedModelName ?? located.name,
    ...(hooks.faults ? { faults: hooks.faults } : {}),
    onProgress: (done, total, what) => {
      onState({ done, total, what });
      progress(done, total, what);
    },
  });
  progress.end();
  return engine;
}

/** A Hub id or an authors' released name is downloaded (or found in its cache) before the engine starts. */
async function locateModelForServe(
  config: ServerConfig,
  env: Record<string, string | undefined>,
  log: Logger,
  onProgress: (done: number, total: number, what: string) => void,
): Promise<{ path?: string; name?: string }> {
  if (config.engine.model === undefined) {
    if (config.engine.revision !== undefined) throw new ConfigError('--revision needs a Hub id in --model');
    return {};
  }
  const { locateModel } = await import('../engine/hub/locate.ts');
  const { hubSettingsFromEnv } = await import('../engine/hub/settings.ts');
  return locateModel(config.engine.model, hubSettingsFromEnv(env), {
    revision: config.engine.revision,
    onProgress: (p) => onProgress(p.done, p.total ?? 0, `download ${p.label}`),
    onLog: (line) => log.info(line),
  });
}

/** A bar on a terminal, otherwise a log line per 10% (and per new phase). */
function progressReporter(log: Logger): ((done: number, total: number, what: string) => void) & { end(): void } {
  const tty = process.stderr.isTTY === true;
  let lastWhat = '';
  let lastDecile = -1;
  let drewBar = false;
  const report = (done: number, total: number, what: string) => {
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    if (tty) {
      const width = 30;
      const filled = Math.round(frac * width);
      process.stderr.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${what.slice(0, 40).padEnd(40)}`,
      );
      drewBar = true;
      return;
    }
    const decile = Math.floor(frac * 10);
    if (what !== lastWhat || decile !== lastDecile) log.info({ done, total, what }, `loading ${decile * 10}%: ${what}`);
    lastWhat = what;
    lastDecile = decile;
  };
  return Object.assign(report, {
    end() {
      if (drewBar) process.stderr.write('\n');
    },
  });
}
