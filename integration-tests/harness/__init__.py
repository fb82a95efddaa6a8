"""Small reusable helpers for meshward's integration tests.

Modules:
  ports   - free loopback ports
  procs   - subprocesses in their own process group, logs to a file, bounded waits
  echo    - in-process HTTP upstream that echoes and records requests
  envoy   - Envoy bootstrap builders, launcher, admin/stats helpers, --mode validate
  oidc    - the real npm `oidc-provider` as a managed process
  tokens  - keys, JWKS and JWT minting (PyJWT + cryptography), raw/forged tokens
  wasm_build - builds a test-only proxy-wasm crate of the workspace, returns its module
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "integration-tests"
DIST = REPO_ROOT / "dist"
