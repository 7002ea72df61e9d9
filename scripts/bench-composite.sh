#!/usr/bin/env bash
# CPU seconds per minute of a composed four-party session (see composer/examples/bench.rs).
# Usage: scripts/bench-composite.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test >/dev/null
cargo run --release -q -p jiefen-composer --example bench -- "${1:-60}"
