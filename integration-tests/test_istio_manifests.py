"""Istio manifests in istio-manifests/: valid against the Istio CRD schemas
(npm @kubernetes-models/istio), and every WasmPlugin pluginConfig passes the filter's JSON
Schema (docs/schemas/<filter>.schema.json) and is accepted by the real filter in Envoy."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from harness import REPO_ROOT, TESTS_DIR
from harness.envoy import Envoy, jwt_auth_filter, static_cluster, validate, wasm_filter
from harness.schemas import validator

MANIFESTS = sorted((REPO_ROOT / "istio-manifests").glob("*.yaml"))
VALIDATOR = TESTS_DIR / "istio" / "validate-manifests.mjs"


def run_validator(*files) -> tuple[int, list[dict], str]:
    node = shutil.which("node") or "node"
    p = subprocess.run([node, str(VALIDATOR), *map(str, files)], cwd=TESTS_DIR,
                       capture_output=True, text=True, timeout=60)
    try:
        results = json.loads(p.stdout)
    except json.JSONDecodeError:
        results = []
    return p.returncode, results, p.stdout + p.stderr


@pytest.fixture(scope="module")
def validated():
    assert MANIFESTS, "no manifests in istio-manifests/"
    return run_validator(*MANIFESTS)


def test_jwt_auth_wasmplugin_shipped():
    assert (REPO_ROOT / "istio-manifests" / "jwt-auth.yaml") in MANIFESTS


def test_manifests_valid_against_istio_crds(validated):
    rc, results, out = validated
    assert rc == 0, out
    assert results and all(r["ok"] for r in results), out
    plugins = [r for r in results if r["kind"] == "WasmPlugin"]
    assert plugins, "no WasmPlugin found"


def test_jwt_auth_wasmplugin_fields(validated):
    _, results, _ = validated
    wp = [r for r in results if r["file"].endswith("jwt-auth.yaml") and r["kind"] == "WasmPlugin"]
    assert len(wp) == 1
    text = (REPO_ROOT / "istio-manifests" / "jwt-auth.yaml").read_text()
    for needle in ("phase: AUTHN", "failStrategy: FAIL_CLOSE", "imagePullPolicy:", "selector:"):
        assert needle in text


def test_validator_rejects_an_invalid_manifest(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
                   "metadata: {name: x}\nspec: {url: 'oci://x', phase: NOT_A_PHASE}\n")
    rc, results, out = run_validator(bad)
    assert rc != 0 and results and not results[0]["ok"], out
    assert "phase" in results[0]["error"], out


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


def _schema_for(module: str):
    return REPO_ROOT / "docs" / "schemas" / f"{module}.schema.json"


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
        schema_path = _schema_for(module)
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
    f.write_text("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
                 "metadata: {name: meshward-jwt-auth}\n"
                 "spec: {url: 'oci://ghcr.io/meshward/nosuch:0.1.0', pluginConfig: {rules: []}}\n")
    _, results, out = run_validator(f)
    configs = _plugin_configs(results)
    assert [m for _, m, _ in configs] == ["nosuch"], out
    assert any("no JSON Schema docs/schemas/nosuch.schema.json" in p for p in schema_problems(configs))
    # named like jwt-auth, loading rate-limit: a jwt-auth config fails rate-limit's schema
    f.write_text("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n"
                 "metadata: {name: meshward-jwt-auth}\n"
                 "spec: {url: 'oci://ghcr.io/meshward/rate-limit:0.1.0', pluginConfig: {providers: {}}}\n")
    _, results, out = run_validator(f)
    problems = schema_problems(_plugin_configs(results))
    assert any("'rules' is a required property" in p for p in problems), problems


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


def _wasm_plugin(name: str) -> dict:
    import yaml

    docs = [d for d in yaml.safe_load_all((REPO_ROOT / "istio-manifests" / name).read_text()) if d]
    return next(d for d in docs if d["kind"] == "WasmPlugin")


def test_suite_plugin_sections_are_the_single_filter_plugins():
    """A section moves between the suite and a single-filter plugin without edits: the suite's
    shipped sections are exactly the single-filter plugins' pluginConfigs."""
    suite = _wasm_plugin("meshward.yaml")
    assert module_of(suite["spec"]["url"]) == "meshward"
    assert suite["spec"]["phase"] == "AUTHN", "jwt_auth runs first: the suite sits where authentication does"
    sections = suite["spec"]["pluginConfig"]
    for section, single in (("jwt_auth", "jwt-auth.yaml"), ("authz", "authz.yaml"), ("rate_limit", "rate-limit.yaml")):
        assert sections[section] == _wasm_plugin(single)["spec"]["pluginConfig"], section


def test_suite_plugin_config_runs_in_envoy(procs):
    """The suite's pluginConfig given to dist/meshward.wasm in a real Envoy: every stage
    configures, and a request without a token meets jwt-auth first."""
    cfg = _wasm_plugin("meshward.yaml")["spec"]["pluginConfig"]
    echo = procs.echo()
    e = procs.envoy([wasm_filter(cfg, wasm="dist/meshward.wasm", name="meshward", root_id="meshward",
                                 vm_id="meshward")],
                    [static_cluster("upstream", echo.port), static_cluster("outbound|443||idp.example.com", 1),
                     static_cluster("outbound|8081||ratelimit.shop.svc.cluster.local", 1)])
    e.start()
    assert "meshward suite: stages jwt_auth -> authz -> rate_limit" in e.log_text()
    r = e.request("/users/alice/orders")
    assert r.status_code == 401, r.text
