// Validate Istio manifests with the CRD schemas of npm @kubernetes-models/istio.
//
//   node validate-manifests.mjs FILE.yaml [...]
//
// Prints one JSON array on stdout: one entry per YAML document
//   {file, index, kind, name, ok, error?, pluginConfig?}
// and exits 1 if any document is invalid or of an unsupported kind.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { WasmPlugin } from '@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin';
import { RequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import { AuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { EnvoyFilter } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter';
import { ServiceEntry } from '@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry';

const MODELS = {
  'extensions.istio.io/v1alpha1/WasmPlugin': WasmPlugin,
  'security.istio.io/v1/RequestAuthentication': RequestAuthentication,
  'security.istio.io/v1/AuthorizationPolicy': AuthorizationPolicy,
  'networking.istio.io/v1alpha3/EnvoyFilter': EnvoyFilter,
  'networking.istio.io/v1/ServiceEntry': ServiceEntry,
};

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
  docs.forEach((doc, index) => {
    if (doc.errors.length) {
      results.push({ file, index, ok: false, error: `yaml: ${doc.errors.map((e) => e.message).join('; ')}` });
      failed = true;
      return;
    }
    const obj = doc.toJS();
    if (obj == null) return; // empty document
    const key = `${obj.apiVersion}/${obj.kind}`;
    const Model = MODELS[key];
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
    if (obj.kind === 'WasmPlugin' && obj.spec?.pluginConfig !== undefined) {
      entry.pluginConfig = obj.spec.pluginConfig;
    }
    if (!entry.ok) failed = true;
    results.push(entry);
  });
}
console.log(JSON.stringify(results, null, 1));
process.exit(failed ? 1 : 0);
