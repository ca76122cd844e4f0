// Runs the fake server in its own process (its own event loop and core), so at 1,000 requests/s the
// server's timers do not compete with the load tester's. Argument: the FakeScript as JSON.
// Prints `LISTENING <url>` once ready; exits when stdin closes (the parent went away).
import { createFakeServer, listen } from './fake-server.ts';

const script = JSON.parse(process.argv[2] ?? '{"ttftMs":10,"itlMs":5}');
const server = createFakeServer(script);
const url = await listen(server);
process.stdout.write(`LISTENING ${url}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
