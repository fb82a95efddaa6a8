#!/usr/bin/env bash
# Times the anomaly signature core compiled to wasm32-wasip1 inside Node.js's
# V8, per request, until the filter glue exists to measure it in Envoy.
# Node's V8 is not Envoy's: read the figures as indicative only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp "$here/probe.rs" "$work/src/lib.rs"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "anomaly-v8-bench"
version = "0.0.0"
edition = "2021"
publish = false
[lib]
crate-type = ["cdylib"]
[dependencies]
anomaly = { path = "$repo/filters/anomaly" }
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true
[workspace]
TOML
cp "$repo/Cargo.lock" "$work/Cargo.lock"
cargo build --quiet --release --target wasm32-wasip1 \
  --manifest-path "$work/Cargo.toml" --target-dir "$repo/target/anomaly-v8-bench"
# Envoy's V8 host (proxy-wasm-cpp-host) turns Liftoff off, so every function
# is compiled by TurboFan up front; without this flag Node times the baseline
# tier for the first thousands of calls.
node --no-warnings --no-liftoff "$here/bench.mjs" \
  "$repo/target/anomaly-v8-bench/wasm32-wasip1/release/anomaly_v8_bench.wasm"
