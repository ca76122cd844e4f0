// Test entry: runs `blockserve serve` (runServe) in a child process with the given argv, so tests can
// send it real signals. Usage: node --import tsx server/testing/serve-child.ts [--fake-engine '{...}'] ...
// Both test inputs are read here, in the test entry only, so the real `blockserve serve` (and the image,
// which ships no testing/ folder) has no way to reach them: --fake-engine (JSON options of the scripted
// fake engine, taken out of argv before the serve options are parsed) and BLOCKSERVE_TEST_FAULTS (JSON,
// engine/faults.ts).
import { runServe, type ServeTestHooks } from '../main.ts';
import { FakeEngine } from './fake-engine.ts';

const argv = process.argv.slice(2);
const hooks: ServeTestHooks = {};
const fakeAt = argv.indexOf('--fake-engine');
if (fakeAt >= 0) {
  const options = JSON.parse(argv[fakeAt + 1] ?? '{}');
  argv.splice(fakeAt, 2);
  hooks.engine = async () => new FakeEngine(options);
}
if (process.env.BLOCKSERVE_TEST_FAULTS) hooks.faults = JSON.parse(process.env.BLOCKSERVE_TEST_FAULTS) as Record<string, number>;
runServe(argv, process.env, hooks).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`serve-child: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
