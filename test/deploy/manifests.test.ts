// Every Kubernetes object deploy/kubernetes produces validates against the official schemas (strict: no
// unknown fields) for the oldest and newest Kubernetes versions we support.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { readKustomization, renderKustomization, type K8sObject } from './kustomize.ts';
import { formatErrors, K8sValidator, SCHEMA_VERSIONS } from './k8s-schema.ts';
import { KUBERNETES_DIR, kustomizationDirs } from './deploy-files.ts';

const validators = SCHEMA_VERSIONS.map((v) => new K8sValidator(v));

test('schemas for at least two Kubernetes versions are vendored', () => {
  assert.ok(SCHEMA_VERSIONS.length >= 2, `found ${SCHEMA_VERSIONS.join(', ')}`);
});

for (const dir of kustomizationDirs()) {
  const name = relative(KUBERNETES_DIR, dir) || '.';
  test(`kustomization ${name}: every object is valid against the Kubernetes schemas`, () => {
    const objects = renderKustomization(dir);
    assert.ok(objects.length > 0);
    for (const validator of validators) {
      for (const o of objects) {
        const errors = validator.errors(o);
        assert.deepEqual(errors, [], `${validator.version} ${o.kind}/${o.metadata.name}:\n${formatErrors(errors)}`);
      }
    }
  });
}

test('every manifest in base/ is listed in its kustomization (none silently left out)', () => {
  const base = join(KUBERNETES_DIR, 'base');
  const listed = new Set(readKustomization(base).resources);
  const files = readdirSync(base).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual(
    files.filter((f) => !listed.has(f)),
    [],
  );
  const kinds = renderKustomization(base)
    .map((o) => o.kind)
    .sort();
  assert.deepEqual(kinds, ['Deployment', 'HorizontalPodAutoscaler', 'PersistentVolumeClaim', 'PodDisruptionBudget', 'Service']);
});

// The validator must be able to fail: mutate a valid Deployment in the ways a hand edit goes wrong.
test('the validator rejects a misspelled field, a wrong type and a missing required field', () => {
  const deployment = renderKustomization(join(KUBERNETES_DIR, 'base')).find((o) => o.kind === 'Deployment')!;
  type Container = Record<string, unknown> & { ports: { containerPort: unknown }[] };
  const container = (o: K8sObject) =>
    (o as unknown as { spec: { template: { spec: { containers: Container[] } } } }).spec.template.spec.containers[0]!;
  for (const validator of validators) {
    const typo = structuredClone(deployment);
    container(typo).readinesProbe = container(typo).readinessProbe;
    assert.match(formatErrors(validator.errors(typo)), /additionalProperty.*readinesProbe/);

    const wrongType = structuredClone(deployment);
    container(wrongType).ports[0]!.containerPort = 'eight thousand';
    assert.ok(validator.errors(wrongType).some((e) => e.instancePath.endsWith('/ports/0/containerPort')));

    const missing = structuredClone(deployment);
    delete container(missing).name;
    assert.match(formatErrors(validator.errors(missing)), /required.*"name"/);
  }
});

// kubectl is not a project dependency; where a developer machine has it, the renderer above must agree
// with the real kustomize.
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
for (const dir of kustomizationDirs()) {
  const name = relative(KUBERNETES_DIR, dir) || '.';
  test(`kustomization ${name}: test renderer agrees with kubectl kustomize`, {
    skip: kubectl.status !== 0 && 'kubectl not installed',
  }, () => {
    const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const real = parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
    const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
    const sorted = (list: K8sObject[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
    assert.deepEqual(sorted(renderKustomization(dir)), sorted(real));
  });
}

test('deploy/kubernetes holds the documented pieces', () => {
  for (const file of [
    'base/kustomization.yaml',
    'overlays/cpu-only/kustomization.yaml',
    'prometheus-adapter/values.yaml',
    'monitoring/podmonitor.yaml',
  ]) {
    assert.ok(existsSync(join(KUBERNETES_DIR, file)), file);
  }
});
