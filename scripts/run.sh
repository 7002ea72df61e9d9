#!/usr/bin/env bash
# The README's run command: installs what is missing, then serves everything on embedded defaults
# (SQLite in ./data, in-process session store) at http://127.0.0.1:8080/. Extra arguments go to
# `jiefen serve`, e.g. scripts/run.sh --public-ip 192.168.1.10
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
exec cargo run --release -- serve "$@"
