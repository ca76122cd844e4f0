// Test entry: runs `blockserve serve` (runServe) in a child process with the given argv, so tests can
// send it real signals. Usage: node --import tsx server/testing/serve-child.ts --fake-engine '{}' ...
import { runServe } from '../main.ts';

runServe(process.argv.slice(2)).then(
  () => {
    process.exitCode = 0;
  },
  (err: unknown) => {
    process.stderr.write(`serve-child: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
