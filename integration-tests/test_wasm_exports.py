"""The modules in dist/ export only the per-stream callbacks each filter implements.

Envoy calls a stream callback only when the module exports it (each call into V8
costs Envoy CPU, docs/performance.md), so `make build` trims the rest with
tools/wasm-trim. This checks the shipped artifacts, not the tool's unit tests.
"""

import subprocess

import pytest

from harness import DIST

TRIM = DIST.parent / "target" / "release" / "wasm-trim"
STREAM = {
    "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
    "proxy_on_request_metadata", "proxy_on_response_headers", "proxy_on_response_body",
    "proxy_on_response_trailers", "proxy_on_response_metadata", "proxy_on_log", "proxy_on_done",
}
EXPECTED = {
    "jwt-auth.wasm": {"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers"},
    "authz.wasm": {"proxy_on_request_headers"},
    "rate-limit.wasm": {"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
                        "proxy_on_response_headers"},
    "anomaly.wasm": {"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
                     "proxy_on_response_headers"},
    "noop.wasm": {"proxy_on_request_headers"},
    # the suite: the union of its stages' callbacks
    "meshward.wasm": {"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
                      "proxy_on_response_headers"},
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_only_declared_stream_callbacks_are_exported(module):
    out = subprocess.run([str(TRIM), "--list", str(DIST / module)], capture_output=True, text=True, check=True)
    exports = set(out.stdout.split())
    assert exports & STREAM == EXPECTED[module]
    # The lifecycle the SDK needs is still there.
    assert {"proxy_on_context_create", "proxy_on_delete", "proxy_on_configure", "proxy_on_memory_allocate"} <= exports
