// How fast can this machine's load tester generate load? Open-loop runs at doubling rates against
// the fake server (in its own process, 4 tokens per request), printing what was sent, how late, at
// what CPU, and where the tool starts refusing. Run: node --import tsx loadtest/bench/client-ceiling.ts [maxRate]
import { StreamingClient } from '../client.ts';
import { runPhase } from '../runner.ts';
import { spawnFakeServer } from '../testing/spawn-fake.ts';

const maxRate = Number(process.argv[2] ?? 8000);
const fake = await spawnFakeServer({ ttftMs: 5, itlMs: 2 });
const client = new StreamingClient({ baseUrl: fake.url, endpoint: 'completions', model: 'fake-model', ignoreEos: true, timeoutMs: 30_000 });
const items = [{ prompt: 'one two three', maxTokens: 4 }];
try {
  await runPhase(client, { load: { kind: 'concurrency', concurrency: 32 }, numRequests: 256, seed: 1, items });
  console.log('rate req/s  sent req/s  send lag p50/p99 ms  loop lag p99 ms  client CPU  verdict');
  for (let rate = 250; rate <= maxRate; rate *= 2) {
    const r = await runPhase(client, { load: { kind: 'rate', rate, burstiness: 1 }, durationS: 2, seed: 7, items });
    const o = r.overhead;
    console.log(
      `${String(rate).padStart(9)}  ${o.achievedRate.toFixed(0).padStart(10)}  ${`${o.sendLagMs!.p50.toFixed(2)}/${o.sendLagMs!.p99.toFixed(2)}`.padStart(19)}  ${o.eventLoopLagMs.p99.toFixed(1).padStart(15)}  ${`${o.clientCpuPercent.toFixed(0)}%`.padStart(10)}  ${r.refused ? `refused: ${r.refused}` : 'ok'}`,
    );
    if (r.refused) break;
  }
} finally {
  await client.close();
  await fake.close();
}
