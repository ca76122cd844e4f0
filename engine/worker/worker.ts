// The engine thread: builds the model and the engine loop, then serves submit/abort from the main
// thread. All compute (kernels, sampling, detokenizing) happens here, never on the HTTP event loop.

import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './protocol.ts';
import { createLocalEngine } from '../create.ts';
import type { EngineOptions } from '../options.ts';
import type { EngineLoop } from '../loop/engine-loop.ts';

const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);
const STATS_INTERVAL_MS = 250;

async function pump(id: string, events: AsyncIterable<unknown>): Promise<void> {
  for await (const event of events) send({ type: 'event', id, event: event as never });
}

async function start(): Promise<void> {
  const opts = workerData as Omit<EngineOptions, 'onProgress'>;
  let engine: EngineLoop;
  let tokenizerPath: string;
  try {
    // admission 'caller': the client on the main thread applied admit() already (engine/requests.ts).
    ({ engine, tokenizerPath } = await createLocalEngine({
      ...opts,
      admission: 'caller',
      onProgress: (done, total, what) => send({ type: 'progress', done, total, what }),
    }));
  } catch (e) {
    const err = e as Error;
    send({ type: 'failed', message: err.message, errorName: err.constructor?.name ?? 'Error' });
    return;
  }
  const timer = setInterval(
    () => send({ type: 'stats', stats: engine.stats(), heapUsed: process.memoryUsage().heapUsed }),
    STATS_INTERVAL_MS,
  );
  port.on('message', (m: ToWorker) => {
    if (m.type === 'submit') {
      let events: AsyncIterable<unknown>;
      try {
        events = engine.submit(m.req);
      } catch (e) {
        const err = e as Error & { code?: string };
        send({ type: 'rejected', id: m.req.id, code: err.code ?? 'invalid_request', message: err.message });
        return;
      }
      pump(m.req.id, events).catch((e: Error) =>
        send({ type: 'event', id: m.req.id, event: { type: 'error', code: 'internal_error', message: e.message } }),
      );
    } else if (m.type === 'abort') {
      engine.abort(m.id);
    } else if (m.type === 'close') {
      clearInterval(timer);
      engine.close().finally(() => {
        send({ type: 'closed' });
        port.close();
      });
    }
  });
  engine.onFailure((reason) => send({ type: 'dead', reason }));
  send({ type: 'ready', info: engine.info, limits: engine.limits, tokenizerPath, stats: engine.stats() });
}

void start();
