// Validate Kubernetes manifests strictly, as an API server with the CRDs installed would:
//
//   node validate-manifests.mjs FILE.yaml [...]
//
// - Schema: Istio kinds against npm @kubernetes-models/istio, Deployment/Service against
//   npm kubernetes-models, Gateway against @kubernetes-models/gateway-api; Envoy Gateway kinds
//   and kustomization files against the structural schemas in schemas.mjs.
// - Unknown fields are refused at every depth (the API server prunes or, with
//   fieldValidation=Strict, refuses them; the npm models accept them silently).
// - The CRDs' CEL rules (x-kubernetes-validations) in crd-rules.json are evaluated with a
//   CEL implementation (npm @marcbachmann/cel-js), plus the Kubernetes URL functions.
//
// Prints one JSON array on stdout: one entry per YAML document
//   {file, index, kind, name, ok, errors: [..], url?, pluginConfig?, config?}
// and exits 1 if any document is invalid or of an unsupported kind.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { Environment } from '@marcbachmann/cel-js';
import { localSchemas } from './schemas.mjs';

const RULES = JSON.parse(readFileSync(new URL('./crd-rules.json', import.meta.url), 'utf8'));

// --- schema validators ---------------------------------------------------------------------

function camel(s) {
  return s.split(/[.-]/).filter(Boolean).map((p) => p[0].toUpperCase() + p.slice(1)).join('');
}

// The compiled schema validator of the package that models apiVersion/kind, or undefined.
async function schemaFor(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Za-z]+$/.test(kind)) return undefined;
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const local = localSchemas[`${apiVersion}/${kind}`];
  if (local) return local;
  let path;
  if (group.endsWith('.istio.io')) {
    path = `@kubernetes-models/istio/_schemas/${camel(group)}${camel(version)}${kind}.js`;
  } else if (group === 'gateway.networking.k8s.io') {
    path = `@kubernetes-models/gateway-api/_schemas/IoK8sSigsGatewayApiApis${camel(version)}${kind}.js`;
  } else if (group === '' || group === 'apps') {
    path = `kubernetes-models/_schemas/IoK8sApi${camel(group || 'core')}${camel(version)}${kind}.js`;
  } else {
    return undefined;
  }
  try {
    // The packages do not export _schemas; import the file by its path.
    const mod = await import(new URL(`../node_modules/${path}`, import.meta.url).href);
    return mod.validate;
  } catch {
    return undefined;
  }
}

// Wrap `value` so the validator's property reads are recorded. A generated validator reads
// every property its schema names (present or not) and enumerates the keys of maps; so an own
// key of a probed, never-enumerated object that was never read is a field the schema lacks.
// Objects never probed are free-form (x-kubernetes-preserve-unknown-fields, e.g. pluginConfig).
function track(value, path, log) {
  if (value === null || typeof value !== 'object') return value;
  const rec = { path, probed: new Set(), enumerated: false, value };
  log.push(rec);
  const target = Array.isArray(value)
    ? value.map((v, i) => track(v, `${path}[${i}]`, log))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, track(v, path ? `${path}.${k}` : k, log)]));
  return new Proxy(target, {
    get(t, k, r) {
      if (typeof k === 'string') rec.probed.add(k);
      return Reflect.get(t, k, r);
    },
    has(t, k) {
      if (typeof k === 'string') rec.probed.add(k);
      return Reflect.has(t, k);
    },
    ownKeys(t) {
      rec.enumerated = true;
      return Reflect.ownKeys(t);
    },
  });
}

function schemaErrors(validate, obj) {
  const log = [];
  const ok = validate(track(obj, '', log));
  const errors = ok ? [] : (validate.errors || []).map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword} ${JSON.stringify(e.params ?? {})}`);
  for (const rec of log) {
    if (Array.isArray(rec.value) || rec.enumerated || rec.probed.size === 0) continue;
    for (const key of Object.keys(rec.value)) {
      if (!rec.probed.has(key)) errors.push(`${rec.path ? `${rec.path}.` : ''}${key}: unknown field`);
    }
  }
  return errors;
}

// --- CEL --------------------------------------------------------------------------------------

// Kubernetes' CEL URL library (isURL, url, getScheme) follows Go's url.ParseRequestURI: an
// absolute URI or an absolute path; a scheme followed by a non-slash is opaque and accepted;
// with an authority, the host's characters and the port's digits are checked.
const HOST_OK = /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]<>"%]*$/;
function parseRequestURI(raw) {
  if (typeof raw !== 'string' || raw === '' || /[\x00-\x1f\x7f]/.test(raw)) return null;
  if (raw === '*') return { scheme: '' };
  let scheme = '';
  let rest = raw;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (/[A-Za-z]/.test(c)) continue;
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) break;
      continue;
    }
    if (c === ':') {
      if (i === 0) return null; // missing protocol scheme
      scheme = raw.slice(0, i).toLowerCase();
      rest = raw.slice(i + 1);
    }
    break;
  }
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  if (!rest.startsWith('/')) return scheme ? { scheme } : null;
  if (scheme && rest.startsWith('//')) {
    const after = rest.slice(2);
    const slash = after.indexOf('/');
    let authority = slash < 0 ? after : after.slice(0, slash);
    const at = authority.lastIndexOf('@');
    if (at >= 0) authority = authority.slice(at + 1);
    let port = '';
    if (authority.startsWith('[')) {
      const close = authority.indexOf(']');
      if (close < 0) return null;
      port = authority.slice(close + 1);
      if (port && !/^:[0-9]*$/.test(port)) return null;
    } else {
      const colon = authority.lastIndexOf(':');
      if (colon >= 0) {
        port = authority.slice(colon);
        if (!/^:[0-9]*$/.test(port)) return null;
        authority = authority.slice(0, colon);
      }
      if (!HOST_OK.test(authority) || /%(?![0-9A-Fa-f]{2})/.test(authority)) return null;
    }
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(rest)) return null;
  return { scheme };
}

class KubeURL {
  constructor(parsed) {
    this.scheme = parsed.scheme;
  }
}

const cel = new Environment({ unlistedVariablesAreDyn: true })
  .registerType('URL', KubeURL)
  .registerFunction('isURL(string): bool', (s) => parseRequestURI(s) !== null)
  .registerFunction('url(string): URL', (s) => {
    const p = parseRequestURI(s);
    if (!p) throw new Error(`URL parse error during conversion from string: ${s}`);
    return new KubeURL(p);
  })
  .registerFunction({ name: 'getScheme', receiverType: 'URL', returnType: 'string', handler: (u) => u.scheme, params: [] });

// Every value at `path` ("spec.targetRefs[].namespace", "spec.selector.matchLabels.*"), with
// its location; absent fields yield nothing (a rule only runs on a present field).
function at(obj, path) {
  let found = [{ value: obj, where: '' }];
  for (const seg of path.split('.')) {
    const next = [];
    const name = seg.replace(/\[\]$/, '');
    for (const { value, where } of found) {
      if (value === null || typeof value !== 'object') continue;
      if (name === '*') {
        for (const [k, v] of Object.entries(value)) next.push({ value: v, where: `${where}.${k}` });
      } else if (name in value) {
        next.push({ value: value[name], where: where ? `${where}.${name}` : name });
      }
    }
    found = seg.endsWith('[]')
      ? next.flatMap(({ value, where }) => (Array.isArray(value) ? value.map((v, i) => ({ value: v, where: `${where}[${i}]` })) : []))
      : next;
  }
  return found;
}

// JSON integers are CEL ints (BigInt in cel-js), as the API server types them from the schema.
function celValue(v) {
  if (Number.isInteger(v)) return BigInt(v);
  if (Array.isArray(v)) return v.map(celValue);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, celValue(x)]));
  return v;
}

function celErrors(key, obj) {
  const errors = [];
  for (const { path, rule, message } of RULES.kinds[key] ?? []) {
    for (const { value, where } of at(obj, path)) {
      let ok;
      try {
        ok = cel.evaluate(rule, { self: celValue(value) });
      } catch (e) {
        ok = false;
        errors.push(`${where}: ${message} (rule failed to evaluate: ${e.message})`);
        continue;
      }
      if (ok !== true) errors.push(`${where}: ${message}`);
    }
  }
  return errors;
}

// --- main -------------------------------------------------------------------------------------

export async function validateObject(obj) {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const validate = await schemaFor(obj.apiVersion, obj.kind);
  if (!validate) return [`unsupported kind ${key}`];
  return [...schemaErrors(validate, obj), ...celErrors(key, obj)];
}

async function main(files) {
  const results = [];
  let failed = false;
  for (const file of files) {
    let docs;
    try {
      docs = parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true });
    } catch (e) {
      results.push({ file, index: 0, ok: false, errors: [`read/parse: ${e.message}`] });
      failed = true;
      continue;
    }
    for (const [index, doc] of docs.entries()) {
      if (doc.errors.length) {
        results.push({ file, index, ok: false, errors: doc.errors.map((e) => `yaml: ${e.message}`) });
        failed = true;
        continue;
      }
      const obj = doc.toJS();
      if (obj == null) continue; // empty document
      const entry = { file, index, kind: obj.kind, name: obj.metadata?.name };
      entry.errors = typeof obj === 'object' && !Array.isArray(obj) ? await validateObject(obj) : ['not a mapping'];
      entry.ok = entry.errors.length === 0;
      if (obj.kind === 'WasmPlugin') {
        if (obj.spec?.url !== undefined) entry.url = obj.spec.url;
        if (obj.spec?.pluginConfig !== undefined) entry.pluginConfig = obj.spec.pluginConfig;
      }
      if (obj.kind === 'EnvoyExtensionPolicy') {
        entry.wasm = (obj.spec?.wasm ?? []).map((w) => ({ url: w.code?.image?.url ?? w.code?.http?.url, config: w.config }));
      }
      if (!entry.ok) failed = true;
      results.push(entry);
    }
  }
  console.log(JSON.stringify(results, null, 1));
  process.exit(failed ? 1 : 0);
}

await main(process.argv.slice(2));
