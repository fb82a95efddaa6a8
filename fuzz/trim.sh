#!/usr/bin/env bash
# Keep fuzz/corpus/<t> under 200 files: the seeds, plus a set of libFuzzer
# inputs that covers every edge the whole corpus covers (-merge=1 with
# counters off), cut to the smallest files if still too many.
#   fuzz/trim.sh <target>...   (after fuzz/run.sh has built the binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_FILES=199
bin="${CARGO_TARGET_DIR:-target/fuzz}/x86_64-unknown-linux-gnu/release"
for t in "$@"; do
  dir="fuzz/corpus/$t"
  n=$(ls "$dir" | wc -l)
  [ "$n" -le "$MAX_FILES" ] && continue
  min="target/fuzz-work/$t.min"
  rm -rf "$min" && mkdir -p "$min"
  cp "$dir"/seed-* "$min"/
  "$bin/$t" -merge=1 -use_counters=0 -max_len=4000 "$min" "$dir" >/dev/null 2>"target/fuzz-work/$t.trim.log"
  keep=$((MAX_FILES - $(ls "$min"/seed-* | wc -l)))
  # Smallest non-seed inputs first.
  ls -Sr "$min" | grep -v '^seed-' | tail -n +$((keep + 1)) | while read -r f; do rm -f "$min/$f"; done
  rm -f "$dir"/*
  cp "$min"/* "$dir"/
  echo "   $t: corpus $n -> $(ls "$dir" | wc -l) files"
done
