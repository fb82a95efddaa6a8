#!/usr/bin/env bash
# Long fuzz runs with cargo fuzz (libFuzzer), one target at a time:
#   fuzz/run.sh [target...]        (default: every target)
# FUZZ_SECONDS per target (default 60). New inputs go to target/fuzz-work/<t>;
# afterwards those that add coverage over fuzz/corpus/<t> are merged into it
# (libFuzzer -merge=1), at most 4000 bytes each. Crashes and
# timeouts land in fuzz/artifacts/<t>/ (not committed: turn each into a test
# in fuzz/tests/regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${FUZZ_SECONDS:-60}"
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
# Stable toolchain: the sancov flags cargo fuzz passes are stable `-C`
# options; RUSTC_BOOTSTRAP covers the `--cfg fuzzing`/`-Z` paths of some
# versions. No LTO (the workspace release profile's), unwinding so a panic
# message is printed, and each filter crate's proxy-wasm `_initialize`
# export tolerated (three filters link into one native binary; never called).
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/fuzz}"
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_PANIC=unwind
export RUSTFLAGS="-Clink-arg=-Wl,--allow-multiple-definition"
FLAGS=(--sanitizer none --features libfuzzer)

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build "${FLAGS[@]}" >/dev/null
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
mkdir -p target/fuzz-work fuzz/artifacts
for t in "${targets[@]}"; do
  work="target/fuzz-work/$t"
  mkdir -p "$work" "fuzz/artifacts/$t"
  echo "== $t: ${SECS}s"
  rc=0
  "$bin/$t" "$work" "fuzz/corpus/$t" -max_total_time="$SECS" -max_len=4000 -timeout=5 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
    2>"target/fuzz-work/$t.log" || rc=$?
  grep -E '^stat::number_of_executed_units|^stat::peak_rss|^#[0-9]+.*DONE' "target/fuzz-work/$t.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "!! $t: finding (exit $rc), see target/fuzz-work/$t.log and fuzz/artifacts/$t/"
    tail -n 30 "target/fuzz-work/$t.log"
    continue
  fi
  # Keep the committed corpus small: add only inputs that bring new coverage.
  "$bin/$t" -merge=1 -max_len=4000 "fuzz/corpus/$t" "$work" \
    >/dev/null 2>"target/fuzz-work/$t.merge.log"
  bash fuzz/trim.sh "$t"
  echo "   corpus: $(ls "fuzz/corpus/$t" | wc -l) files"
done
