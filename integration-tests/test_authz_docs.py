"""docs/authz.md and docs/examples/authz stay in sync with the schema and the filter: every
```json block on the page validates against docs/schemas/authz.schema.json (the Rust test
filters/authz/tests/doc_examples.rs checks the compiler accepts them), the schema refuses
typical mistakes, and the WasmPlugin's pluginConfig is accepted by the real filter."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from harness import REPO_ROOT
from harness.authz_support import authz_filter
from harness.envoy import Envoy, static_cluster, validate

SCHEMA = json.loads((REPO_ROOT / "docs/schemas/authz.schema.json").read_text())
PAGE = (REPO_ROOT / "docs/authz.md").read_text()
BLOCKS = re.findall(r"```json\n(.*?)```", PAGE, re.S)


def test_page_has_examples():
    assert len(BLOCKS) >= 5
    assert len(list((REPO_ROOT / "docs/examples/authz").glob("*.json"))) >= 8


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_doc_block_validates(i):
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(BLOCKS[i]))


@pytest.mark.parametrize("bad", [
    {"polices": []},
    {"policies": [{"name": "p", "action": "CUSTOM"}]},
    {"policies": [{"action": "ALLOW"}]},
    {"policies": [{"name": "p", "rules": [{"from": [{"source": {"principal": ["x"]}}]}]}]},
    {"policies": [{"name": "p", "rules": [{"to": [{"operation": {"ports": ["http"]}}]}]}]},
    {"policies": [{"name": "p", "rules": [{"when": [{"key": "request.colour", "values": ["x"]}]}]}]},
    {"policies": [{"name": "p", "rules": [{"when": [{"key": "source.ip"}]}]}]},
    {"policies": [{"name": "p", "rules": [{"from": [{"source": {"ipBlocks": ["not-an-ip"]}}]}]}]},
    {"policies": [{"name": "p", "rules": [{"to": [{"operation": {"methods": ["G*T"]}}]}]}]},
    {"policies": [{"name": "p", "rules": [{"objects": [{"equals": "request.auth.claims[sub]"}]}]}]},
    {"policies": [{"name": "p", "rules": [{"time_windows": [{"start": "9:00"}]}]}]},
    {"policies": [{"name": "p", "rules": [{"countries": ["DEU"]}]}]},
    {"policies": [{"name": "p", "deny_response": {"status": 418}}]},
    {"default_action": "AUDIT"},
    {"xff_num_trusted_hops": 99},
    {"identity": {"jwt_authn": {}}},
])
def test_schema_refuses_mistakes(bad):
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(bad), bad


def test_wasmplugin_config_matches_schema_and_filter(tmp_path):
    docs = yaml.safe_load_all((REPO_ROOT / "istio-manifests/single-filters/authz.yaml").read_text())
    doc = next(d for d in docs if d["kind"] == "WasmPlugin")
    assert doc["kind"] == "WasmPlugin" and doc["spec"]["phase"] == "AUTHZ"
    assert doc["metadata"]["name"] == "meshward-authz"
    cfg = doc["spec"]["pluginConfig"]
    jsonschema.Draft202012Validator(SCHEMA).validate(cfg)
    e = Envoy(tmp_path, [authz_filter(cfg)], [static_cluster("upstream", 1)], name="istio-authz")
    e.config_path.write_text(json.dumps(e.config))
    rc, out = validate(e.config_path)
    assert rc == 0, out[-3000:]
