/**
 * Reading and validating the deploy recipes (docs/architecture.md, "Deploy recipes"):
 * YAML documents as Compose and kubectl read them, the Compose Specification's JSON schema
 * (the copy dclint ships on npm) through ajv, and the Kubernetes OpenAPI schemas of
 * Kubernetes 1.33 (kubernetes-models 4.5.1 on npm, each compiled by ajv into a validator).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DEPLOY = join(ROOT, 'deploy');

/** The Kubernetes version whose API schemas validate deploy/k8s (kubernetes-models 4.5.x). */
export const KUBERNETES_VERSION = '1.33';

/** One YAML file, merge keys (`<<: *anchor`) expanded as Compose expands them. */
export function readYaml(path: string): unknown {
  return parse(readFileSync(path, 'utf8'), { merge: true });
}

/** Every document of a multi-document YAML file (kubectl's `---`), empty ones left out. */
export function readYamlDocuments(text: string): Record<string, unknown>[] {
  return parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`not valid YAML: ${document.errors[0]!.message}`);
      return document.toJS() as Record<string, unknown> | null;
    })
    .filter((document): document is Record<string, unknown> => document !== null);
}

const require = createRequire(import.meta.url);

/** The Compose Specification schema (draft-07) as dclint ships it, compiled by ajv. */
export function composeValidator(): (document: unknown) => ErrorObject[] {
  const path = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
  // Its $schema names draft-07 by its https:// address, which ajv registers under http://; draft-07 is ajv's own default.
  const { $schema: _draft, ...schema } = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  return (document) => (validate(document) ? [] : [...(validate.errors ?? [])]);
}

/** The model classes of kubernetes-models for one apiVersion (`v1`, `apps/v1`, `policy/v1`…). */
type Models = Record<string, (new (data: object) => { validate(): void }) | undefined>;

/**
 * Problems of one Kubernetes object against the OpenAPI schema of its apiVersion and kind:
 * an empty list when it validates. An apiVersion/kind that Kubernetes 1.33 does not serve is
 * a problem too.
 */
export async function kubernetesProblems(document: Record<string, unknown>): Promise<string[]> {
  const { apiVersion, kind } = document;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return ['apiVersion and kind are required'];
  let models: Models;
  try {
    models = (await import(`kubernetes-models/${apiVersion}`)) as Models;
  } catch {
    return [`${apiVersion} is not an API version of Kubernetes ${KUBERNETES_VERSION}`];
  }
  const Model = models[kind];
  if (typeof Model !== 'function') return [`${apiVersion} has no kind ${kind} in Kubernetes ${KUBERNETES_VERSION}`];
  try {
    // The model copies the object (JSON round trip first, so nothing of ours is kept by reference).
    new Model(JSON.parse(JSON.stringify(document)) as object).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: ErrorObject[] }).errors;
    if (!errors) return [(error as Error).message];
    return errors.map((problem) => `${problem.instancePath || '/'} ${problem.message ?? problem.keyword}`);
  }
}
