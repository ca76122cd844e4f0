// compose.yaml validates against the Compose Specification schema (vendored, see schemas/SOURCE.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2019Module from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { REPO_ROOT } from './deploy-files.ts';
import { seconds } from './dockerfile.ts';

const Ajv2019 = Ajv2019Module.default;

function composeValidator() {
  const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'test/deploy/schemas/compose/compose_spec.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  // The 2021 schema still names subschemas with draft-04 `id` strings, which ajv refuses; they carry no
  // constraint. (An `id` that is a property name maps to an object, and stays.)
  const strip = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(strip);
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (typeof o.id === 'string') delete o.id;
      Object.values(o).forEach(strip);
    }
  };
  strip(schema);
  delete schema.$schema;
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // Compose's own formats: Go durations ('45s', '1m30s'); ports and subnets are checked by compose itself.
  ajv.addFormat('duration', {
    type: 'string',
    validate: (v: string) => {
      try {
        seconds(v);
        return /[a-z]$/.test(v);
      } catch {
        return false;
      }
    },
  });
  for (const f of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(f, true);
  return ajv.compile(schema);
}

test('compose.yaml is valid against the Compose Specification schema', () => {
  const validate = composeValidator();
  const doc = parse(readFileSync(join(REPO_ROOT, 'compose.yaml'), 'utf8')) as { services: Record<string, Record<string, unknown>> };
  assert.equal(validate(doc), true, JSON.stringify(validate.errors, null, 1));
  // And it can fail: a misspelled key, a duration compose cannot read.
  const typo = structuredClone(doc);
  typo.services.blockserve!.stop_grace_periode = '45s';
  assert.equal(validate(typo), false);
  const badDuration = structuredClone(doc);
  badDuration.services.blockserve!.stop_grace_period = '45 seconds';
  assert.equal(validate(badDuration), false);
});
