// Test entry: runs `blockserve serve` (runServe) in a child process with the given argv, so tests can
// send it real signals. Usage: node --import tsx server/testing/serve-child.ts --fake-engine '{}' ...
// BLOCKSERVE_TEST_FAULTS (JSON, engine/faults.ts) is read here, in the test entry only: the real
// `blockserve serve` has no way to inject faults.
import { runServe } from '../main.ts';

const faults = process.env.BLOCKSERVE_TEST_FAULTS ? (JSON.parse(process.env.BLOCKSERVE_TEST_FAULTS) as Record<string, number>) : undefined;
runServe(process.argv.slice(2), process.env, { faults }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`serve-child: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
