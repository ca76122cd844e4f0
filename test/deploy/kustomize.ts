// A small renderer for the kustomize features deploy/kubernetes uses (resources, images, inline JSON 6902
// patches), so the tests see the objects `kubectl apply -k` would send without needing kubectl. Any other
// kustomization field throws: a new feature must be taught here (and is cross-checked against
// `kubectl kustomize` where kubectl exists, see manifests.test.ts).
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [key: string]: unknown };
  [key: string]: unknown;
};

type ImageRule = { name: string; newName?: string; newTag?: string; digest?: string };
type PatchOp = { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown };
type PatchRule = { target: { group?: string; version?: string; kind?: string; name?: string }; patch: string };
type Kustomization = {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  images?: ImageRule[];
  patches?: PatchRule[];
};

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'images', 'patches']);

/** Every YAML document in a file, empty documents dropped. */
export function readYamlDocuments(file: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs
    .map((d) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject;
    })
    .filter((o) => o != null);
}

export function readKustomization(dir: string): Kustomization {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  for (const field of Object.keys(k)) {
    if (!KNOWN_FIELDS.has(field))
      throw new Error(`${dir}/kustomization.yaml: field '${field}' is not supported by test/deploy/kustomize.ts`);
  }
  return k;
}

/** The objects `kubectl kustomize dir` produces, in resource order. */
export function renderKustomization(dir: string): K8sObject[] {
  const k = readKustomization(dir);
  let objects: K8sObject[] = [];
  for (const entry of k.resources ?? []) {
    const path = resolve(dir, entry);
    objects.push(...(statSync(path).isDirectory() ? renderKustomization(path) : readYamlDocuments(path)));
  }
  objects = objects.map((o) => structuredClone(o));
  for (const rule of k.images ?? []) for (const o of objects) applyImage(o, rule);
  for (const rule of k.patches ?? []) {
    const ops = parse(rule.patch) as PatchOp[];
    const matches = objects.filter((o) => matchesTarget(o, rule.target));
    if (!matches.length) throw new Error(`${dir}: patch target ${JSON.stringify(rule.target)} matches nothing`);
    for (const o of matches) for (const op of ops) applyJsonPatchOp(o, op);
  }
  return objects;
}

function matchesTarget(o: K8sObject, t: PatchRule['target']): boolean {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  return (
    (t.kind === undefined || t.kind === o.kind) &&
    (t.name === undefined || t.name === o.metadata.name) &&
    (t.group === undefined || t.group === group) &&
    (t.version === undefined || t.version === version)
  );
}

function applyImage(o: K8sObject, rule: ImageRule): void {
  const spec = (o.spec as { template?: { spec?: { containers?: { image: string }[]; initContainers?: { image: string }[] } } } | undefined)
    ?.template?.spec;
  for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
    const name = c.image.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
    if (name !== rule.name) continue;
    const tag = /:([^:/@]*)(@|$)/.exec(c.image.slice(name.length))?.[1];
    c.image = (rule.newName ?? name) + (rule.digest ? `@${rule.digest}` : (rule.newTag ?? tag) ? `:${rule.newTag ?? tag}` : '');
  }
}

/** RFC 6902 add / replace / remove on a JSON pointer. */
export function applyJsonPatchOp(doc: unknown, op: PatchOp): void {
  const keys = op.path
    .split('/')
    .slice(1)
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = keys.pop();
  if (last === undefined) throw new Error(`patch path '${op.path}' addresses the whole document`);
  let parent = doc as Record<string, unknown>;
  for (const key of keys) {
    const next = parent[key];
    if (next === null || typeof next !== 'object') throw new Error(`patch path '${op.path}': '${key}' does not exist`);
    parent = next as Record<string, unknown>;
  }
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new Error(`patch path '${op.path}': bad index`);
    if (op.op === 'add') parent.splice(index, 0, op.value);
    else if (index >= parent.length) throw new Error(`patch path '${op.path}': no element ${index}`);
    else if (op.op === 'replace') parent[index] = op.value;
    else parent.splice(index, 1);
    return;
  }
  if (op.op !== 'add' && !(last in parent)) throw new Error(`patch path '${op.path}': '${last}' does not exist`);
  if (op.op === 'remove') delete parent[last];
  else parent[last] = op.value;
}
