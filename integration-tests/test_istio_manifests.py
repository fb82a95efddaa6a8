"""Istio and Envoy Gateway manifests in istio-manifests/, checked strictly:

- every file, and every kustomization rendered by a real `kubectl kustomize`, against the kinds'
  schemas (npm @kubernetes-models/*, structural schemas for Envoy Gateway and kustomize) with
  unknown fields refused at every depth and the CRDs' CEL rules evaluated
  (istio/validate-manifests.mjs);
- every WasmPlugin pluginConfig (and EnvoyExtensionPolicy config) through the filters' own
  config compilers (`dist/meshward validate`, module from the url, whatever the plugin's name),
  through the filter's JSON Schema, and loaded by the real module in Envoy;
- the choices the docs promise: which variant applies what, prod/dev overlays, cluster names that
  match the ServiceEntry/Service Istio builds them from, gateway match mode."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import DIST, REPO_ROOT, TESTS_DIR
from harness.envoy import Envoy, jwt_auth_filter, static_cluster, validate, wasm_filter
from harness.schemas import validator

ROOT = REPO_ROOT / "istio-manifests"
VALIDATOR = TESTS_DIR / "istio" / "validate-manifests.mjs"
CLI = DIST / "meshward"
# Overlay patch files are fragments, checked through the overlays they patch.
MANIFESTS = sorted(p for p in ROOT.rglob("*.yaml") if "overlays" not in p.relative_to(ROOT).parts
                   or p.name == "kustomization.yaml")
KUSTOMIZATIONS = ["base", "single-filters", "gateway", "waypoint", "overlays/dev", "overlays/prod"]


def run_validator(*files) -> tuple[int, list[dict], str]:
    node = shutil.which("node") or "node"
    p = subprocess.run([node, str(VALIDATOR), *map(str, files)], cwd=TESTS_DIR,
                       capture_output=True, text=True, timeout=120)
    try:
        results = json.loads(p.stdout)
    except json.JSONDecodeError:
        results = []
    return p.returncode, results, p.stdout + p.stderr


def kubectl() -> str:
    k = shutil.which("kubectl")
    if not k:
        pytest.fail("kubectl is missing: scripts/ensure-deps.sh installs Debian kubernetes-client")
    return k


def kustomize(target: str) -> str:
    p = subprocess.run([kubectl(), "kustomize", str(ROOT / target)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"kubectl kustomize {target}: {p.stderr}"
    return p.stdout


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("kustomize")
    files = {}
    for target in KUSTOMIZATIONS:
        f = out / (target.replace("/", "-") + ".yaml")
        f.write_text(kustomize(target))
        files[target] = f
    return files


@pytest.fixture(scope="module")
def validated():
    assert MANIFESTS, "no manifests in istio-manifests/"
    return run_validator(*MANIFESTS)


def cli(*args) -> subprocess.CompletedProcess:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `make build` first")
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------------ strict schema + CEL

def test_every_manifest_is_valid(validated):
    rc, results, out = validated
    assert rc == 0, out
    assert results and all(r["ok"] for r in results), out
    kinds = {r["kind"] for r in results}
    assert {"WasmPlugin", "ServiceEntry", "DestinationRule", "EnvoyFilter", "Deployment", "Service",
            "Gateway", "EnvoyExtensionPolicy", "Kustomization"} <= kinds, kinds


def test_every_rendered_kustomization_is_valid(rendered):
    rc, results, out = run_validator(*rendered.values())
    assert rc == 0, out
    assert all(r["ok"] for r in results), out


WP = "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: x, namespace: shop}\n"


@pytest.mark.parametrize("body,error", [
    (WP + "spec: {url: 'oci://a/b:1', failStratgy: FAIL_CLOSE}\n", "spec.failStratgy: unknown field"),
    (WP + "sepc: {url: 'oci://a/b:1'}\nspec: {url: 'oci://a/b:1'}\n", "sepc: unknown field"),
    (WP + "spec: {url: 'oci://a/b:1', match: [{mdoe: SERVER}]}\n", "spec.match[0].mdoe: unknown field"),
    (WP + "spec: {url: 'oci://a/b:1', selector: {matchLabels: {app: a}}, targetRefs: [{kind: Gateway, name: w}]}\n",
     "spec: only one of targetRefs or selector can be set"),
    (WP + "spec: {url: 'oci://a/b:1', selector: {matchLabels: {app: a}}, targetRef: {kind: Gateway, name: w}}\n",
     "spec: only one of targetRefs or selector can be set"),
    (WP + "spec: {url: 'ftp://example.com/x.wasm'}\n", "spec.url: url must have schema one of"),
    # a registry without oci:// parses as the scheme `localhost`, as in Kubernetes' isURL/url()
    (WP + "spec: {url: 'localhost:5000/authz:1'}\n", "spec.url: url must have schema one of"),
    (WP + "spec: {url: 'oci://a/b:1', targetRefs: [{kind: Gateway, name: w, namespace: other}]}\n",
     "spec.targetRefs[0].namespace: cross namespace referencing is not currently supported"),
    (WP + "spec: {url: 'oci://a/b:1', selector: {matchLabels: {'app*': a}}}\n", "wildcard not allowed in label key match"),
    (WP + "spec: {url: 'oci://a/b:1', vmConfig: {env: [{name: A, value: b, valueFrom: HOST}]}}\n",
     "value may only be set when valueFrom is INLINE"),
    (WP + "spec: {url: 'oci://a/b:1', phase: NOT_A_PHASE}\n", "/spec/phase"),
    (WP + "spec: {url: 'oci://a/b:1', sha256: abc}\n", "/spec/sha256"),
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {selector: {matchLabels: {a: b}}, "
     "template: {spec: {containers: [{name: c, image: i, prots: []}]}}}\n",
     "spec.template.spec.containers[0].prots: unknown field"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{name: grpc, port: 1, apProtocol: grpc}]}\n",
     "spec.ports[0].apProtocol: unknown field"),
    ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
     "spec: {host: h, trafficPolicy: {tls: {mode: SIMPLE, snii: h}}}\n", "spec.trafficPolicy.tls.snii: unknown field"),
    ("apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyExtensionPolicy\nmetadata: {name: e}\n"
     "spec: {targetRefs: [{group: g, kind: Gateway, name: eg}], wasm: [{code: {type: HTTP, image: {url: x}}}]}\n",
     "If type is HTTP, http field needs to be set."),
    ("apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyExtensionPolicy\nmetadata: {name: e}\n"
     "spec: {targetRefs: [{group: g, kind: Gateway, name: eg}], wasm: [{code: {type: Image, image: {url: x}}, failOpn: true}]}\n",
     "must NOT have additional properties"),
    ("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresource: [a.yaml]\n",
     "must NOT have additional properties"),
    ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
     "spec: {hosts: ['*'], ports: [{number: 443, name: https}]}\n", "spec.hosts[0]: hostname cannot be wildcard"),
    ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
     "spec: {hosts: [h.example.com], ports: [{number: 443, name: a}, {number: 443, name: b}]}\n",
     "spec.ports: port number cannot be duplicated"),
    ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
     "spec: {hosts: [h.example.com], addresses: [10.0.0.0/8], resolution: DNS, ports: [{number: 443, name: a}]}\n",
     "CIDR addresses are allowed only for NONE/STATIC resolution types"),
    ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
     "spec: {host: h, workloadSelector: {matchLabels: {app: 'a*'}}}\n", "wildcard not allowed in label value match"),
    ("apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f}\n"
     "spec: {workloadSelector: {labels: {app: a}}, targetRefs: [{kind: Gateway, name: w}]}\n",
     "spec: only one of targetRefs or workloadSelector can be set"),
    ("apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f}\n"
     "spec: {configPatches: [{applyTo: HTTP_FILTER, match: {context: GATEWAY, waypoint: {}}}]}\n",
     "only support waypointMatch when context is WAYPOINT"),
    ("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", "unsupported kind"),
    ("a: 1\na: 2\n", "Map keys must be unique"),
])
def test_validator_refuses(tmp_path, body, error):
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    rc, results, out = run_validator(f)
    assert rc != 0 and results and not results[0]["ok"], out
    assert any(error in e for e in results[0]["errors"]), out


def test_url_forms_the_crd_accepts(tmp_path):
    """The url rule's other side: the forms Istio documents pass (no scheme means oci)."""
    f = tmp_path / "ok.yaml"
    f.write_text("---\n".join(WP + f"spec: {{url: '{u}'}}\n" for u in (
        "oci://ghcr.io/meshward/authz:0.1.0", "ghcr.io/meshward/authz:0.1.0", "file:///opt/authz.wasm",
        "https://example.com/authz.wasm", "oci://localhost:5000/authz@sha256:" + "0" * 64)))
    rc, results, out = run_validator(f)
    assert rc == 0 and len(results) == 5, out


# ------------------------------------------------------------------ plugin configs: the real compilers

def test_cli_compiles_every_plugin_config():
    """`dist/meshward validate` on every manifest: each WasmPlugin's pluginConfig compiles with
    the module its url loads; other kinds are reported as skipped."""
    p = cli("validate", *MANIFESTS)
    assert p.returncode == 0, p.stdout + p.stderr
    oks = re.findall(r"WasmPlugin (\S+): ok \((\S+) config\)", p.stdout)
    assert len(oks) == 6, p.stdout
    assert ("meshward", "suite") in oks and ("meshward-authz", "authz") in oks, oks


def test_cli_compiles_rendered_overlays(rendered):
    """The overlays' patches (dev adds authz `shadow: true`) still give configs the filters accept."""
    p = cli("validate", *rendered.values())
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count(": ok (") == 1 + 3 + 1 + 1 + 1 + 1, p.stdout


def test_cli_refuses_a_bad_plugin_config_by_its_field_path(tmp_path):
    text = (ROOT / "single-filters" / "rate-limit.yaml").read_text().replace("requests: 10,", "requests: 0,")
    assert "requests: 0," in text
    f = tmp_path / "rl.yaml"
    f.write_text(text)
    p = cli("validate", f)
    assert p.returncode == 1, p.stdout
    assert (f"{f}#0 WasmPlugin meshward-rate-limit: rate-limit config: "
            "spec.pluginConfig.rules[0].tiers.limits.free.requests") in p.stdout, p.stdout


def test_cli_follows_the_url_not_the_name(tmp_path):
    """Named like jwt-auth, loading rate-limit: the config is compiled as rate-limit's."""
    f = tmp_path / "p.yaml"
    f.write_text(WP.replace("name: x", "name: meshward-jwt-auth")
                 + "spec: {url: 'oci://ghcr.io/meshward/rate-limit:0.1.0', pluginConfig: {providers: {}}}\n")
    p = cli("validate", f)
    assert p.returncode == 1 and "rate-limit config: spec.pluginConfig" in p.stdout, p.stdout


def test_envoy_gateway_config_compiles(validated, tmp_path):
    _, results, _ = validated
    wasm = [w for r in results if r["kind"] == "EnvoyExtensionPolicy" for w in r["wasm"]]
    assert wasm and module_of(wasm[0]["url"]) == "meshward"
    f = tmp_path / "eg.json"
    f.write_text(json.dumps(wasm[0]["config"]))
    p = cli("validate", "--module", "suite", f)
    assert p.returncode == 0, p.stdout + p.stderr


FILTERS = ("jwt-auth", "authz", "rate-limit", "meshward")


def module_of(url: str) -> str:
    """The filter a WasmPlugin loads, from its `url`: the module's file or image name
    (`oci://ghcr.io/meshward/authz:0.1.0`, `.../authz@sha256:...`,
    `https://host/dist/authz.wasm`, `file:///opt/authz.wasm` -> `authz`)."""
    path = url.split("://", 1)[-1].split("?", 1)[0]
    name = path.rstrip("/").rsplit("/", 1)[-1]
    name = name.split("@", 1)[0].split(":", 1)[0]
    return name.removesuffix(".wasm").removeprefix("meshward-")


def _plugin_configs(results):
    """(where, module, pluginConfig) for every WasmPlugin; the module names the schema,
    whatever the plugin's metadata.name."""
    out = []
    for r in results:
        if r["kind"] == "WasmPlugin":
            where = f"{r['file']}#{r['index']}"
            assert r.get("url"), f"{where}: WasmPlugin without spec.url"
            out.append((where, module_of(r["url"]), r.get("pluginConfig", {})))
    return out


def test_module_of_reads_the_url_not_the_name():
    for url in ("oci://ghcr.io/meshward/authz:0.1.0", "ghcr.io/meshward/authz",
                "oci://ghcr.io/meshward/authz@sha256:" + "0" * 64,
                "https://example.com/dist/authz.wasm?x=1", "file:///opt/filters/meshward-authz.wasm",
                "oci://localhost:5000/authz:latest"):
        assert module_of(url) == "authz", url


def test_every_wasmplugin_is_a_known_filter(validated):
    _, results, _ = validated
    configs = _plugin_configs(results)
    assert configs, "no WasmPlugin found"
    for where, module, _ in configs:
        assert module in FILTERS, f"{where}: url names no meshward filter ({module!r})"


def schema_problems(configs) -> list[str]:
    """Every way the configs fail their filter's JSON Schema. A missing schema is a
    problem too: the check must never be passed over."""
    problems = []
    for where, module, cfg in configs:
        schema_path = REPO_ROOT / "docs" / "schemas" / f"{module}.schema.json"
        if not schema_path.exists():
            problems.append(f"{where}: no JSON Schema {schema_path.relative_to(REPO_ROOT)}")
            continue
        for e in sorted(validator(module).iter_errors(cfg), key=lambda e: list(e.path)):
            problems.append(f"{where}: {'.'.join(map(str, e.path)) or '<root>'}: {e.message}")
    return problems


def test_plugin_configs_match_json_schema(validated):
    _, results, _ = validated
    configs = _plugin_configs(results)
    assert configs, "no WasmPlugin found"
    assert schema_problems(configs) == []


def test_a_plugin_without_a_schema_fails_the_check(tmp_path):
    """Regression: a missing schema used to skip the check. Also: the schema follows the
    module the plugin loads, not its metadata.name."""
    f = tmp_path / "p.yaml"
    f.write_text(WP.replace("name: x", "name: meshward-jwt-auth")
                 + "spec: {url: 'oci://ghcr.io/meshward/nosuch:0.1.0', pluginConfig: {rules: []}}\n")
    _, results, out = run_validator(f)
    configs = _plugin_configs(results)
    assert [m for _, m, _ in configs] == ["nosuch"], out
    assert any("no JSON Schema docs/schemas/nosuch.schema.json" in p for p in schema_problems(configs))


# ------------------------------------------------------------------ in a real Envoy

def test_jwt_auth_plugin_config_accepted_by_filter(validated, tmp_path, jwt_wasm):
    """The WasmPlugin's pluginConfig, given to the real filter as its configuration."""
    _, results, _ = validated
    cfgs = [c for w, m, c in _plugin_configs(results) if m == "jwt-auth"]
    assert cfgs
    e = Envoy(tmp_path, [jwt_auth_filter(cfgs[0])],
              [static_cluster("upstream", 1), static_cluster("outbound|443||idp.example.com", 1)],
              name="istio-cfg")
    e.config_path.write_text(json.dumps(e.config))
    rc, out = validate(e.config_path)
    assert rc == 0, out[-3000:]


def _wasm_plugins(path: Path) -> list[dict]:
    return [d for d in docs_of(path.read_text()) if d["kind"] == "WasmPlugin"]


def test_suite_plugin_sections_are_the_single_filter_plugins():
    """A section moves between the suite and a single-filter plugin without edits: the suite's
    shipped sections are exactly the single-filter plugins' pluginConfigs."""
    [suite] = _wasm_plugins(ROOT / "base" / "meshward.yaml")
    assert module_of(suite["spec"]["url"]) == "meshward"
    assert suite["spec"]["phase"] == "AUTHN", "jwt_auth runs first: the suite sits where authentication does"
    sections = suite["spec"]["pluginConfig"]
    for section, single in (("jwt_auth", "jwt-auth.yaml"), ("authz", "authz.yaml"), ("rate_limit", "rate-limit.yaml")):
        [plugin] = _wasm_plugins(ROOT / "single-filters" / single)
        assert sections[section] == plugin["spec"]["pluginConfig"], section


def _suite_configs(rendered) -> list[tuple[str, dict, list[dict]]]:
    """(where, suite config, the clusters it calls: stubs for Istio's, the EnvoyPatchPolicy's own
    cluster definitions for Envoy Gateway with their addresses moved to loopback)."""
    out = []
    for target in ("overlays/prod", "overlays/dev", "gateway", "waypoint"):
        for d in docs_of(rendered[target].read_text()):
            if d["kind"] == "WasmPlugin":
                cfg = d["spec"]["pluginConfig"]
                out.append((target, cfg, [static_cluster(c, 1) for c in sorted(_clusters(cfg))]))
    eep, epp = docs_of((ROOT / "envoy-gateway" / "meshward.yaml").read_text())
    cfg = eep["spec"]["wasm"][0]["config"]
    patched = []
    for patch in epp["spec"]["jsonPatches"]:
        cluster = json.loads(json.dumps(patch["operation"]["value"]))
        for ep in cluster["load_assignment"]["endpoints"]:
            for lb in ep["lb_endpoints"]:
                lb["endpoint"]["address"]["socket_address"].update(address="127.0.0.1", port_value=1)
        patched.append(cluster)
    assert {c["name"] for c in patched} == _clusters(cfg)
    out.append(("envoy-gateway", cfg, patched))
    return out


def _clusters(cfg) -> set[str]:
    found = set()
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            if k == "cluster" and isinstance(v, str):
                found.add(v)
            else:
                found |= _clusters(v)
    elif isinstance(cfg, list):
        for v in cfg:
            found |= _clusters(v)
    return found


def test_suite_configs_run_in_envoy(rendered, procs):
    """Each distinct suite config (prod, dev with authz in shadow, gateway, waypoint, Envoy
    Gateway with its EnvoyPatchPolicy clusters) given to dist/meshward.wasm in a real Envoy: every
    stage configures, and a request without a token meets jwt-auth first."""
    echo = procs.echo()
    for where, cfg, called in _suite_configs(rendered):
        clusters = [static_cluster("upstream", echo.port)] + called
        e = procs.envoy([wasm_filter(cfg, wasm="dist/meshward.wasm", name="meshward", root_id="meshward",
                                     vm_id="meshward")], clusters)
        e.start()
        assert "meshward suite: stages jwt_auth -> authz -> rate_limit" in e.log_text(), where
        r = e.request("/users/alice/orders")
        assert r.status_code == 401, (where, r.text)


# ------------------------------------------------------------------ what each variant applies

def _rendered_docs(rendered, target) -> list[dict]:
    return docs_of(rendered[target].read_text())


def test_base_applies_the_suite_and_single_filters_the_three_never_both(rendered):
    def plugins(target):
        return sorted(module_of(d["spec"]["url"]) for d in _rendered_docs(rendered, target) if d["kind"] == "WasmPlugin")
    assert plugins("base") == ["meshward"]
    assert plugins("single-filters") == ["authz", "jwt-auth", "rate-limit"]
    for target in ("overlays/dev", "overlays/prod"):
        assert plugins(target) == ["meshward"], target


def _plugin(rendered, target) -> dict:
    [p] = [d for d in _rendered_docs(rendered, target) if d["kind"] == "WasmPlugin"]
    return p


def test_prod_fails_closed_with_pinned_images_and_resources(rendered):
    p = _plugin(rendered, "overlays/prod")["spec"]
    assert (p["failStrategy"], p["imagePullPolicy"]) == ("FAIL_CLOSE", "IfNotPresent")
    assert "shadow" not in p["pluginConfig"]["authz"]
    deployments = [d for d in _rendered_docs(rendered, "overlays/prod") if d["kind"] == "Deployment"]
    assert len(deployments) == 2
    for d in deployments:
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert re.search(r":\d+\.\d+\.\d+$", c["image"]), c["image"]
            assert c["resources"]["requests"] and c["resources"]["limits"], d["metadata"]["name"]


def test_dev_fails_open_pulls_always_and_shadows_authz(rendered):
    p = _plugin(rendered, "overlays/dev")["spec"]
    assert (p["failStrategy"], p["imagePullPolicy"]) == ("FAIL_OPEN", "Always")
    assert p["pluginConfig"]["authz"]["shadow"] is True


def test_plugin_choices(rendered):
    """Phase/priority/failStrategy/pull policy set on every plugin, sha256 left to `make release`;
    gateways select with CLIENT mode (Istio counts gateway listeners as client traffic, so SERVER
    would never attach) and waypoints by targetRefs to an istio-waypoint Gateway."""
    plugins = {t: _plugin(rendered, t) for t in ("base", "gateway", "waypoint")}
    for d in _rendered_docs(rendered, "single-filters"):
        if d["kind"] == "WasmPlugin":
            plugins[d["metadata"]["name"]] = d
    for name, d in plugins.items():
        s = d["spec"]
        assert {"phase", "priority", "failStrategy", "imagePullPolicy"} <= s.keys(), name
    assert plugins["base"]["spec"]["match"] == [{"mode": "SERVER"}]
    gw = plugins["gateway"]["spec"]
    assert "istio" in gw["selector"]["matchLabels"] and gw["match"] == [{"mode": "CLIENT"}]
    wp = plugins["waypoint"]["spec"]
    assert "selector" not in wp and wp["targetRefs"][0]["kind"] == "Gateway"
    [gateway] = [d for d in _rendered_docs(rendered, "waypoint") if d["kind"] == "Gateway"]
    assert gateway["spec"]["gatewayClassName"] == "istio-waypoint"
    assert wp["targetRefs"][0]["name"] == gateway["metadata"]["name"]
    # phases order the single filters: jwt-auth (AUTHN), then authz before rate-limit (AUTHZ)
    assert plugins["meshward-jwt-auth"]["spec"]["phase"] == "AUTHN"
    assert plugins["meshward-authz"]["spec"]["priority"] > plugins["meshward-rate-limit"]["spec"]["priority"]


def test_cluster_names_are_the_ones_istio_builds(rendered):
    """Every cluster a plugin config names is `outbound|PORT||HOST` for a ServiceEntry host or a
    Service in the same rendered set: the IdP's with TLS origination, the rate-limit service's
    port named grpc (HTTP/2)."""
    for target in ("base", "single-filters", "gateway", "waypoint"):
        docs = _rendered_docs(rendered, target)
        known = {}
        for d in docs:
            if d["kind"] == "ServiceEntry":
                for h in d["spec"]["hosts"]:
                    for p in d["spec"]["ports"]:
                        known[f"outbound|{p['number']}||{h}"] = d
            if d["kind"] == "Service":
                host = f"{d['metadata']['name']}.{d['metadata']['namespace']}.svc.cluster.local"
                for p in d["spec"]["ports"]:
                    known[f"outbound|{p['port']}||{host}"] = (d, p)
        used = set()
        for d in docs:
            if d["kind"] == "WasmPlugin":
                used |= _clusters(d["spec"]["pluginConfig"])
        assert used, target
        for c in used:
            assert c in known, f"{target}: cluster {c} has no ServiceEntry or Service"
            if c.startswith("outbound|443||"):
                [dr] = [d for d in docs if d["kind"] == "DestinationRule" and d["spec"]["host"] == c.split("||")[1]]
                assert dr["spec"]["trafficPolicy"]["tls"]["mode"] == "SIMPLE"
                assert dr["spec"]["trafficPolicy"]["tls"]["sni"] == c.split("||")[1]
            if "ratelimit" in c:
                _, port = known[c]
                assert port["name"] == "grpc" and port["appProtocol"] == "grpc"


def test_kustomizations_render_with_the_installed_kubectl():
    """The fields used are those kubectl 1.20's kustomize reads (Debian kubernetes-client);
    a newer kustomize only warns about them."""
    p = subprocess.run([kubectl(), "kustomize", str(ROOT / "overlays/prod")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "kind: WasmPlugin" in p.stdout, p.stderr


@pytest.mark.parametrize("path", ["sidecar/hcm-settings.yaml", "gateway/meshward-gateway.yaml"])
def test_envoyfilter_patches_work_in_envoy(procs, path):
    """The EnvoyFilter patches applied as Istio applies them (INSERT_FIRST into the HTTP filters,
    MERGE into the HCM) to a real Envoy with authz: merge_slashes reaches the upstream, and the
    TCP peer handed over as `meshward.peer` is what authz's ipBlocks match."""
    from harness.authz_support import authz_filter

    [ef] = [d for d in docs_of((ROOT / path).read_text()) if d["kind"] == "EnvoyFilter"]
    first, merge = [], {}
    for p in ef["spec"]["configPatches"]:
        op, value = p["patch"]["operation"], p["patch"]["value"]
        if p["applyTo"] == "HTTP_FILTER" and op == "INSERT_FIRST":
            first.insert(0, value)
        elif p["applyTo"] == "NETWORK_FILTER" and op == "MERGE":
            merge.update(value["typed_config"])
        else:
            pytest.fail(f"{path}: patch {p['applyTo']}/{op} not modelled by this test")
    authz = authz_filter({"policies": [{"name": "deny-loopback-secret", "action": "DENY", "rules": [
        {"from": [{"source": {"ipBlocks": ["127.0.0.1/32"]}}], "to": [{"operation": {"paths": ["/secret"]}}]}]}]})
    echo = procs.echo()
    e = procs.envoy(first + [authz], [static_cluster("upstream", echo.port)])
    hcm = e.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert merge.pop("@type") == hcm["@type"]
    hcm.update(merge)
    assert [f["name"] for f in hcm["http_filters"]][:1] == ["envoy.filters.http.set_filter_state"]
    e.start()
    r = e.request("/a//b//c")
    assert r.status_code == 200 and r.json()["path"] == "/a/b/c", r.text
    for p in ("/secret", "//secret"):
        r = e.request(p)
        assert r.status_code == 403, (p, r.status_code, r.text)
    # An encoded slash is redirected to its decoded form, so rules and upstream agree on segments.
    r = e.request("/x%2Fsecret", allow_redirects=False)
    assert r.status_code == 307 and r.headers["location"].endswith("/x/secret"), (r.status_code, r.headers)
