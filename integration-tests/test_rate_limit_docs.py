"""docs/rate-limit.md examples validate against docs/schemas/rate-limit.schema.json, the schema
rejects typical mistakes, and the shipped Istio manifest's pluginConfig is accepted by the real
filter (the Rust test `doc_examples` checks the filter's compiler accepts the doc examples)."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from harness import REPO_ROOT
from harness.envoy import Envoy, static_cluster, validate
from harness.rls_proc import rate_limit_filter

DOC = REPO_ROOT / "docs" / "rate-limit.md"
SCHEMA = json.loads((REPO_ROOT / "docs" / "schemas" / "rate-limit.schema.json").read_text())
EXAMPLES = [json.loads(m) for m in
            re.findall(r"<!-- example -->\s*```json\n(.*?)```", DOC.read_text(), re.S)]


def test_examples_found():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_doc_example_matches_schema(example):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(example)


def test_schema_rejects_mistakes():
    v = jsonschema.Draft202012Validator(SCHEMA)
    good = {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}]}
    assert v.is_valid(good)
    bad = [
        {"rules": []},
        {"rules": [{"name": "a"}]},
        {"rules": [{"name": "a", "limit": {"requests": 0, "per": "second"}}]},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "fortnight"}}]},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}, "key": [{"header": "a", "query": "b"}]}]},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "mode": "distributed"},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "hybrid": {"share": 0}},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}, "match": {"prefix": "/a", "path": "/b"}}]},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "max_keys": 0},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "admission": "batched"},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "lease": {"max": 0}},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}], "lease": {"lifetime": "100ms"}},
        {"rules": [{"name": "a", "limit": {"requests": 1, "per": "second"}}],
         "admission": "per_request", "lease": {"max": 4}},
    ]
    for case in bad:
        assert not v.is_valid(case), case


def test_istio_plugin_config_accepted_by_the_filter(tmp_path):
    docs = list(yaml.safe_load_all((REPO_ROOT / "istio-manifests" / "single-filters" / "rate-limit.yaml").read_text()))
    wp = [d for d in docs if d and d.get("kind") == "WasmPlugin"]
    assert len(wp) == 1 and wp[0]["spec"]["phase"] == "AUTHZ"
    cfg = wp[0]["spec"]["pluginConfig"]
    jsonschema.Draft202012Validator(SCHEMA).validate(cfg)
    cluster = cfg["rate_limit_service"]["cluster"]
    e = Envoy(tmp_path, [rate_limit_filter(cfg)],
              [static_cluster("upstream", 1), static_cluster(cluster, 1)], name="istio-rl")
    e.config_path.write_text(json.dumps(e.config))
    rc, out = validate(e.config_path)
    assert rc == 0, out[-3000:]
