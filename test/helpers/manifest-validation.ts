import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

/**
 * Offline Kubernetes manifest validation (no API server here, see the shared runtime notes §4):
 * 1. types and required fields: kubernetes-models' validators (generated from the Kubernetes OpenAPI);
 * 2. unknown fields, which the OpenAPI cannot flag (it has no additionalProperties: false): every key is
 *    walked against @kubernetes/client-node's model metadata (getAttributeTypeMap).
 */

export interface ManifestProblem {
  readonly document: string;
  readonly message: string;
}

type AttributeMap = Array<{ name: string; baseName: string; type: string }>;
type ModelClass = { getAttributeTypeMap(): AttributeMap };

const models = k8s as unknown as Record<string, ModelClass | undefined>;

/** kubernetes-models module and client-node model class (named by version and kind) for an object. */
function modelsFor(apiVersion: string, kind: string): { module: string; modelName: string } {
  const version = apiVersion.split('/').at(-1) as string;
  return {
    module: `kubernetes-models/${apiVersion}`,
    modelName: `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`,
  };
}

/** Keys of `value` that the model type does not define, recursively. */
export function unknownFields(value: unknown, typeName: string, path: string): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(typeName);
  if (array) {
    return Array.isArray(value)
      ? value.flatMap((item, i) => unknownFields(item, array[1] as string, `${path}[${i}]`))
      : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(typeName);
  if (map) {
    return typeof value === 'object'
      ? Object.entries(value as object).flatMap(([k, v]) =>
          unknownFields(v, map[1] as string, `${path}.${k}`),
        )
      : [];
  }
  const model = models[typeName];
  if (model === undefined || typeof model.getAttributeTypeMap !== 'function' || typeof value !== 'object')
    return [];
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value as object).flatMap(([key, child]) => {
    const type = attributes.get(key);
    if (type === undefined) return [`${path}.${key}: unknown field (in ${typeName})`];
    return unknownFields(child, type, `${path}.${key}`);
  });
}

/** Validates every document of a multi-document YAML text; returns the problems (none = valid). */
export async function validateManifests(
  text: string,
): Promise<{ kinds: string[]; problems: ManifestProblem[] }> {
  const problems: ManifestProblem[] = [];
  const kinds: string[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      problems.push({ document: '?', message: doc.errors.map((e) => e.message).join('; ') });
      continue;
    }
    const object = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string } } | null;
    if (object === null) continue;
    const label = `${object.kind}/${object.metadata?.name}`;
    kinds.push(label);
    if (typeof object.apiVersion !== 'string' || typeof object.kind !== 'string') {
      problems.push({ document: label, message: 'apiVersion and kind are required' });
      continue;
    }
    const { module, modelName } = modelsFor(object.apiVersion, object.kind);
    type Validatable = new (data: unknown) => { validate(): void };
    let Model: Validatable | undefined;
    try {
      Model = ((await import(module)) as Record<string, Validatable | undefined>)[object.kind];
    } catch {
      Model = undefined;
    }
    if (Model === undefined) {
      problems.push({ document: label, message: `unknown kind ${object.apiVersion} ${object.kind}` });
      continue;
    }
    try {
      new Model(object).validate();
    } catch (error) {
      problems.push({ document: label, message: (error as Error).message });
    }
    if (models[modelName] === undefined) {
      problems.push({
        document: label,
        message: `no client-node model ${modelName} for the unknown-field walk`,
      });
      continue;
    }
    for (const message of unknownFields(object, modelName, object.kind))
      problems.push({ document: label, message });
  }
  return { kinds, problems };
}
