// Schema fuzzing with schemathesis (PyPI; installed into /opt/blockserve-venv by
// .ci/setup.d/30-server.sh) against /openapi.json of the running server: every documented route,
// valid and invalid inputs, streaming included. Checks: no 5xx, status codes, content types and
// bodies all as documented. Required in CI; elsewhere skipped with the reason if st is missing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './testing/harness.ts';

const ST = process.env.BLOCKSERVE_SCHEMATHESIS ?? '/opt/blockserve-venv/bin/st';
const inCi = process.env.CI === 'true';
const skip = !existsSync(ST) && !inCi ? `${ST} is missing (run .ci/setup.d/30-server.sh)` : false;
if (skip) console.log(`# schemathesis.test.ts skipped: ${skip}`);

let server: TestServer | undefined;
after(async () => server?.close());

test('schemathesis finds no 5xx and no response that breaks its schema', { skip, timeout: 120_000 }, async () => {
  // Tokens at full speed: fuzzed requests may ask for hundreds of tokens.
  server = await startTestServer({ tokenIntervalMs: 0, contextLength: 512 });
  const args = [
    'run',
    `${server.url}/openapi.json`,
    '--checks',
    'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance',
    '--max-examples',
    '25',
    '--workers',
    '2',
    '--seed',
    '1',
    '--generation-database',
    'none',
    '--no-color',
  ];
  const child = spawn(ST, args, { cwd: mkdtempSync(join(tmpdir(), 'blockserve-st-')), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, out);
  assert.match(out, /Tested: 9/, 'every documented operation was exercised');
  assert.match(out, /\d+ generated, \d+ passed/);
  assert.doesNotMatch(out, /failed/);
});
