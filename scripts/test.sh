#!/usr/bin/env bash
# The README's test command: installs what is missing, starts a throwaway PostgreSQL, Redis and
# an S3-compatible server (moto),
# runs every test of the workspace (SQLite and PostgreSQL, in-process and Redis session stores),
# then the browser tests in headless Chromium, and stops what it started, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
source scripts/services.sh
trap stop_services EXIT
start_pg
start_redis
start_s3
# Tests that need a service fail (rather than skip) when it is missing.
export JIEFEN_REQUIRE_SERVICES=1
echo "== cargo test (PostgreSQL on :$PGPORT, Redis on :$RPORT, S3 on :$S3PORT)"
cargo build --workspace --all-targets
cargo test --workspace
echo "== load-test smoke run (jiefen-loadtest thresholds)"
scripts/smoke-loadtest.sh
echo "== browser tests (headless Chromium)"
(cd tests/browser && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund; })
JIEFEN_BIN="$PWD/target/debug/jiefen" node tests/browser/run.mjs
echo "== all tests passed"
