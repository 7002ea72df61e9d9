#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while: scripts/fuzz.sh [seconds per target]
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets this machine's stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  echo "== $target ($SECS s)"
  cargo fuzz run "$target" -- -max_total_time="$SECS" -rss_limit_mb=4096
done
