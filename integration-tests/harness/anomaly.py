"""The anomaly filter as an Envoy HTTP filter, and small helpers its tests share."""

from __future__ import annotations

import json

from .envoy import wasm_filter

# Headers the filter sets for the upstream (docs/anomaly.md, "Actions").
SCORE_HEADER = "x-meshward-anomaly-score"
DETECTORS_HEADER = "x-meshward-anomaly-detectors"
HINT_HEADER = "x-meshward-anomaly"


def anomaly_filter(config: dict | str, wasm: str = "dist/anomaly.wasm") -> dict:
    return wasm_filter(config if isinstance(config, str) else json.dumps(config), wasm=wasm,
                       name="meshward.anomaly", root_id="anomaly", vm_id="meshward_anomaly")
