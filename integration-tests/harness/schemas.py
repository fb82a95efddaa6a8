"""The filters' JSON Schemas (docs/schemas/), with the suite's `$ref`s to the three filter
schemas resolved from the same directory (no network)."""

from __future__ import annotations

import json
from functools import lru_cache

import jsonschema
from referencing import Registry, Resource

from . import REPO_ROOT

SCHEMA_DIR = REPO_ROOT / "docs" / "schemas"


@lru_cache(maxsize=None)
def registry() -> Registry:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def validator(module: str) -> jsonschema.Draft202012Validator:
    """A validator for docs/schemas/<module>.schema.json (FileNotFoundError if there is none)."""
    schema = json.loads((SCHEMA_DIR / f"{module}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry())
