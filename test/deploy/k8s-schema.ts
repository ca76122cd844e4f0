// Validates Kubernetes objects against the official JSON schemas vendored in ./schemas (strict flavour:
// unknown fields are errors), with ajv's draft 2020-12 validator.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { K8sObject } from './kustomize.ts';

// Both are CommonJS modules whose default export sits on `.default` when imported from ESM.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

export const SCHEMA_DIR = fileURLToPath(new URL('./schemas/', import.meta.url));
export const SCHEMA_VERSIONS = readdirSync(SCHEMA_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && /^v\d/.test(d.name))
  .map((d) => d.name)
  .sort();

/** kubernetes-validate's file name for a kind: `apps/v1` Deployment -> deployment-apps-v1.json. */
export function schemaFileFor(o: Pick<K8sObject, 'apiVersion' | 'kind'>): string {
  const apiVersion = o.apiVersion.replace(/^([^./]*)(?:\.[^/]*)?\//, '$1-');
  return `${o.kind.toLowerCase()}-${apiVersion}.json`;
}

export class K8sValidator {
  private readonly ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(readonly version: string) {
    // strict: false because the schemas carry x-kubernetes-* annotation keywords ajv does not know.
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.ajv);
    const dir = join(SCHEMA_DIR, version);
    this.ajv.addSchema(JSON.parse(readFileSync(join(dir, '_definitions.json'), 'utf8')));
  }

  /** The schema errors of one object ([] when valid); throws when no schema for its kind is vendored. */
  errors(o: K8sObject): ErrorObject[] {
    const file = schemaFileFor(o);
    let validate = this.compiled.get(file);
    if (!validate) {
      let schema: object;
      try {
        schema = JSON.parse(readFileSync(join(SCHEMA_DIR, this.version, file), 'utf8'));
      } catch {
        throw new Error(
          `no vendored schema ${this.version}/${file} for ${o.apiVersion} ${o.kind}: add it in test/deploy/schemas/vendor.mjs`,
        );
      }
      validate = this.ajv.compile(schema);
      this.compiled.set(file, validate);
    }
    return validate(o) ? [] : [...(validate.errors ?? [])];
  }
}

export function formatErrors(errors: ErrorObject[]): string {
  return errors.map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`).join('\n');
}
