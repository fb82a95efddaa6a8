// Validate Istio manifests with the CRD schemas of npm @kubernetes-models/istio.
//
//   node validate-manifests.mjs FILE.yaml [...]
//
// Prints one JSON array on stdout: one entry per YAML document
//   {file, index, kind, name, ok, error?, url?, pluginConfig?}
// and exits 1 if any document is invalid or of an unsupported kind.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

// Any Istio kind the package models: apiVersion `group/version` + kind -> module path.
async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !apiVersion.includes('.istio.io/')) {
    return undefined;
  }
  if (!/^[a-z0-9.]+\/v[0-9a-z]+$/.test(apiVersion) || !/^[A-Za-z]+$/.test(kind)) return undefined;
  try {
    const mod = await import(`@kubernetes-models/istio/${apiVersion}/${kind}`);
    return mod[kind];
  } catch {
    return undefined;
  }
}

const results = [];
let failed = false;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = parseAllDocuments(readFileSync(file, 'utf8'));
  } catch (e) {
    results.push({ file, index: 0, ok: false, error: `read/parse: ${e.message}` });
    failed = true;
    continue;
  }
  for (const [index, doc] of docs.entries()) {
    if (doc.errors.length) {
      results.push({ file, index, ok: false, error: `yaml: ${doc.errors.map((e) => e.message).join('; ')}` });
      failed = true;
      continue;
    }
    const obj = doc.toJS();
    if (obj == null) continue; // empty document
    const key = `${obj.apiVersion}/${obj.kind}`;
    const Model = await modelFor(obj.apiVersion, obj.kind);
    const entry = { file, index, kind: obj.kind, name: obj.metadata?.name };
    if (!Model) {
      Object.assign(entry, { ok: false, error: `unsupported kind ${key}` });
    } else {
      try {
        new Model(obj).validate();
        entry.ok = true;
      } catch (e) {
        Object.assign(entry, { ok: false, error: e.message });
      }
    }
    if (obj.kind === 'WasmPlugin') {
      if (obj.spec?.url !== undefined) entry.url = obj.spec.url;
      if (obj.spec?.pluginConfig !== undefined) entry.pluginConfig = obj.spec.pluginConfig;
    }
    if (!entry.ok) failed = true;
    results.push(entry);
  }
}
console.log(JSON.stringify(results, null, 1));
process.exit(failed ? 1 : 0);
