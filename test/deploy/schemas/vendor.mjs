#!/usr/bin/env node
// Re-creates the vendored Kubernetes JSON schemas in this folder from the PyPI package kubernetes-validate
// (Apache-2.0; its schemas are generated from the Kubernetes OpenAPI specification, also Apache-2.0).
// Only the kinds deploy/kubernetes uses are kept, with `_definitions.json` pruned to the definitions those
// kinds reach, so the tests need no network and the repository stays small.
//
//   pip download --no-deps kubernetes-validate==1.37.0 -d /tmp/kv
//   node test/deploy/schemas/vendor.mjs /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The oldest Kubernetes the manifests support (preStop `sleep` is on by default from 1.30) and the newest
// the package knows; the strict flavour rejects unknown fields, so a typo in a manifest fails.
export const VERSIONS = ['v1.30.0-local-strict', 'v1.37.0-local-strict'];
// File names as kubernetes-validate spells them: <kind>-<group>-<version>.json.
export const KIND_FILES = [
  'deployment-apps-v1.json',
  'service-v1.json',
  'persistentvolumeclaim-v1.json',
  'poddisruptionbudget-policy-v1.json',
  'horizontalpodautoscaler-autoscaling-v2.json',
];

function collectRefs(node, out) {
  if (Array.isArray(node)) for (const item of node) collectRefs(item, out);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') out.add(value.slice(value.indexOf('#/$defs/') + '#/$defs/'.length));
      else collectRefs(value, out);
    }
  }
  return out;
}

function main(wheel) {
  const here = dirname(fileURLToPath(import.meta.url));
  const work = mkdtempSync(join(tmpdir(), 'k8s-schemas-'));
  try {
    execFileSync('python3', ['-m', 'zipfile', '-e', wheel, work]);
    const pkgVersion = /^Version: (\S+)/m.exec(
      readFileSync(join(work, `kubernetes_validate-${/kubernetes_validate-([^-]+)-/.exec(wheel)[1]}.dist-info`, 'METADATA'), 'utf8'),
    )[1];
    for (const version of VERSIONS) {
      const src = join(work, 'kubernetes_validate', 'kubernetes-json-schema', version);
      const dst = join(here, version);
      rmSync(dst, { recursive: true, force: true });
      mkdirSync(dst, { recursive: true });
      const defsFile = JSON.parse(readFileSync(join(src, '_definitions.json'), 'utf8'));
      const wanted = new Set();
      for (const file of KIND_FILES) {
        const schema = JSON.parse(readFileSync(join(src, file), 'utf8'));
        collectRefs(schema, wanted);
        writeFileSync(join(dst, file), JSON.stringify(schema) + '\n');
      }
      // Transitive closure over the definitions' own references.
      const queue = [...wanted];
      while (queue.length) {
        const name = queue.pop();
        const def = defsFile.$defs[name];
        if (!def) throw new Error(`${version}: missing definition ${name}`);
        for (const ref of collectRefs(def, new Set()))
          if (!wanted.has(ref)) {
            wanted.add(ref);
            queue.push(ref);
          }
      }
      const pruned = { ...defsFile, $defs: Object.fromEntries([...wanted].sort().map((n) => [n, defsFile.$defs[n]])) };
      writeFileSync(join(dst, '_definitions.json'), JSON.stringify(pruned) + '\n');
      console.log(`${version}: ${KIND_FILES.length} kinds, ${wanted.size} definitions`);
    }
    writeFileSync(
      join(here, 'SOURCE.md'),
      [
        '# Vendored JSON schemas (Kubernetes, Compose)',
        '',
        `From the PyPI package kubernetes-validate ${pkgVersion} (Apache-2.0, Copyright (C) 2018 Will Thames),`,
        'folder `kubernetes_validate/kubernetes-json-schema/`; the schemas are generated from the Kubernetes',
        'OpenAPI specification (Apache-2.0, The Kubernetes Authors). Kept: the kinds in deploy/kubernetes and',
        'the definitions they reach, unchanged apart from that pruning and whitespace. Re-create with',
        '`node test/deploy/schemas/vendor.mjs <wheel>` (see the comment at its top).',
        '',
        '`compose/compose_spec.json`: the Compose Specification schema shipped in the PyPI package',
        'docker-compose 1.29.2 (Apache-2.0, Docker, Inc.), file `compose/config/compose_spec.json`, unchanged:',
        '`pip download --no-deps docker-compose==1.29.2` and `python3 -m zipfile -e` the wheel. It is the 2021',
        "spec; compose-schema.test.ts adapts it to ajv at load time (legacy `id` keywords, compose's formats).",
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv[2]) {
    console.error('usage: vendor.mjs <kubernetes_validate-*.whl>');
    process.exit(2);
  }
  main(process.argv[2]);
}
