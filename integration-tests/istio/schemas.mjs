// Structural schemas for the kinds no npm model covers: Envoy Gateway's EnvoyExtensionPolicy and
// EnvoyPatchPolicy (fields from Envoy Gateway's api/v1alpha1 Go types) and kustomization files
// (the kustomize fields). Closed objects (additionalProperties: false) at every level we model;
// free-form where the real type is (config: apiextensions JSON, patch values).
import Ajv from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: false });

const str = { type: 'string' };
const strs = { type: 'array', items: str };
const meta = {
  type: 'object',
  required: ['name'],
  properties: { name: str, namespace: str, labels: { type: 'object', additionalProperties: str }, annotations: { type: 'object', additionalProperties: str } },
  additionalProperties: false,
};
const targetRef = {
  type: 'object',
  required: ['group', 'kind', 'name'],
  properties: { group: str, kind: str, name: str, sectionName: str },
  additionalProperties: false,
};
const closed = (properties, required = []) => ({ type: 'object', properties, required, additionalProperties: false });

const wasm = closed(
  {
    name: str,
    rootID: str,
    code: closed(
      {
        type: { enum: ['HTTP', 'Image', 'ConfigMap'] },
        http: closed({ url: str, sha256: { type: 'string', pattern: '^[a-f0-9]{64}$' } }, ['url']),
        image: closed(
          { url: str, sha256: { type: 'string', pattern: '^[a-f0-9]{64}$' }, pullSecretRef: closed({ group: str, kind: str, name: str, namespace: str }, ['name']) },
          ['url'],
        ),
        sha256: { type: 'string', pattern: '^[a-f0-9]{64}$' },
        pullPolicy: { enum: ['IfNotPresent', 'Always'] },
      },
      ['type'],
    ),
    config: {},
    failOpen: { type: 'boolean' },
    env: closed({ hostKeys: strs }),
  },
  ['code'],
);

const apiObject = (apiVersion, kind, spec) =>
  closed({ apiVersion: { const: apiVersion }, kind: { const: kind }, metadata: meta, spec }, ['apiVersion', 'kind', 'metadata', 'spec']);

const extensionPolicy = apiObject(
  'gateway.envoyproxy.io/v1alpha1',
  'EnvoyExtensionPolicy',
  closed({ targetRef, targetRefs: { type: 'array', items: targetRef, minItems: 1 }, wasm: { type: 'array', items: wasm, maxItems: 16 } }),
);

const patchPolicy = apiObject(
  'gateway.envoyproxy.io/v1alpha1',
  'EnvoyPatchPolicy',
  closed(
    {
      targetRef,
      type: { enum: ['JSONPatch'] },
      priority: { type: 'integer' },
      jsonPatches: {
        type: 'array',
        items: closed(
          {
            type: str,
            name: str,
            operation: closed({ op: { enum: ['add', 'remove', 'replace', 'move', 'copy', 'test'] }, path: str, jsonPath: str, from: str, value: {} }, ['op']),
          },
          ['type', 'operation'],
        ),
      },
    },
    ['type', 'jsonPatches'],
  ),
);

const jsonPatchTarget = closed({ group: str, version: str, kind: str, name: str, namespace: str }, ['kind', 'name']);
const kustomization = closed(
  {
    apiVersion: { const: 'kustomize.config.k8s.io/v1beta1' },
    kind: { const: 'Kustomization' },
    namespace: str,
    namePrefix: str,
    nameSuffix: str,
    commonLabels: { type: 'object', additionalProperties: str },
    commonAnnotations: { type: 'object', additionalProperties: str },
    resources: strs,
    bases: strs,
    patchesStrategicMerge: strs,
    patchesJson6902: { type: 'array', items: closed({ target: jsonPatchTarget, path: str, patch: str }, ['target']) },
    images: { type: 'array', items: closed({ name: str, newName: str, newTag: str, digest: str }, ['name']) },
  },
  ['apiVersion', 'kind'],
);

export const localSchemas = {
  'gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy': ajv.compile(extensionPolicy),
  'gateway.envoyproxy.io/v1alpha1/EnvoyPatchPolicy': ajv.compile(patchPolicy),
  'kustomize.config.k8s.io/v1beta1/Kustomization': ajv.compile(kustomization),
};
