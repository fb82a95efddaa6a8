"""Every example config under docs/examples/<filter>/ validates against
docs/schemas/<filter>.schema.json (the Rust tests check the filter accepts them)."""

import json
import pathlib

import jsonschema
import pytest

from harness.schemas import validator

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMAS = sorted((ROOT / "docs" / "schemas").glob("*.schema.json"))
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*/*.json"))


def schema_for(example: pathlib.Path) -> dict:
    path = ROOT / "docs" / "schemas" / f"{example.parent.name}.schema.json"
    assert path.exists(), f"no schema for {example}"
    return json.loads(path.read_text())


@pytest.mark.parametrize("schema_path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid(schema_path):
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_path.read_text()))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_validates(example):
    schema_for(example)
    validator(example.parent.name).validate(json.loads(example.read_text()))


def test_suite_schema_checks_each_section_against_its_filter_schema():
    v = validator("meshward")
    good = json.loads((ROOT / "docs/examples/meshward/chain.json").read_text())
    assert v.is_valid(good)
    bad = json.loads(json.dumps(good)); bad["jwt_auth"]["providers"]["dev"]["issuer_url"] = "x"
    assert not v.is_valid(bad), "a jwt-auth mistake inside the suite"
    bad = json.loads(json.dumps(good)); bad["rate_limit"]["rules"][0]["limit"]["per"] = "fortnight"
    assert not v.is_valid(bad), "a rate-limit mistake inside the suite"
    bad = json.loads(json.dumps(good)); bad["waf"] = {}
    assert not v.is_valid(bad), "an unknown section"
    ok = json.loads(json.dumps(good)); ok["anomaly"] = {"tag_threshold": 3}
    assert v.is_valid(ok), "the anomaly section"
    bad = json.loads(json.dumps(good)); bad["anomaly"] = {"shadow": "yes"}
    assert not v.is_valid(bad), "an anomaly mistake inside the suite"
    assert not v.is_valid({}), "no stage at all"


def test_jwt_auth_schema_rejects_mistakes():
    schema = json.loads((ROOT / "docs/schemas/jwt-auth.schema.json").read_text())
    v = jsonschema.Draft202012Validator(schema)
    good = json.loads((ROOT / "docs/examples/jwt-auth/local-jwks.json").read_text())
    assert v.is_valid(good)
    bad_cases = []
    c = json.loads(json.dumps(good)); c["providers"]["dev"]["issuer_url"] = "x"; bad_cases.append(c)
    c = json.loads(json.dumps(good)); c["providers"]["dev"]["remote_jwks"] = {"http_uri": {"uri": "http://a/j", "cluster": "a"}}; bad_cases.append(c)
    c = json.loads(json.dumps(good)); c["jwks_unavailable_status"] = 500; bad_cases.append(c)
    c = json.loads(json.dumps(good)); c["jwks_pending_timeout"] = "5"; bad_cases.append(c)
    c = json.loads(json.dumps(good)); c["rules"][0]["match"]["path"] = "/x"; bad_cases.append(c)
    c = json.loads(json.dumps(good)); c["rules"][1]["requires"] = {"provider_name": "dev", "allow_missing": {}}; bad_cases.append(c)
    for case in bad_cases:
        assert not v.is_valid(case), case
