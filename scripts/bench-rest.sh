#!/usr/bin/env bash
# The REST API under load on both databases: seeds CASES cases through the import API, then
# offers RATE requests/s for DURATION (lists, searches, details, state changes) and prints
# p50/p99 latency and throughput per kind (loadtest/src/bin/jiefen-loadtest-rest.rs).
# Usage: scripts/bench-rest.sh [CASES=100000] [RATE=200] [DURATION=60s] [PROFILE=release]
# (DBS="sqlite" or DBS="postgres" runs one database only).
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-100000}; RATE=${2:-200}; DURATION=${3:-60s}; PROFILE=${4:-release}
scripts/deps.sh test >/dev/null
source scripts/services.sh
trap stop_services EXIT
start_pg
flag=(); [ "$PROFILE" = release ] && flag=(--release)
cargo build -q "${flag[@]}" -p jiefen -p jiefen-loadtest
BIN=target/$([ "$PROFILE" = release ] && echo release || echo debug)
for db in ${DBS:-sqlite postgres}; do
  DATA=$(mktemp -d); PORT=$(free_port); MEDIA=$(free_port)
  url=(); [ "$db" = postgres ] && url=(--database-url "$JIEFEN_TEST_DATABASE_URL")
  if [ "$db" = postgres ]; then psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAtc 'drop database if exists jiefen_test' -c 'create database jiefen_test' >/dev/null; fi
  "$BIN/jiefen" serve --listen 127.0.0.1:$PORT --data-dir "$DATA" --media-port "$MEDIA" --media-workers 1 "${url[@]}" >"$DATA/out.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do grep -q "one-time password" "$DATA/out.log" 2>/dev/null && break; sleep 0.1; done
  PASSWORD=$(sed -n "s/.*one-time password: \(\S*\).*/\1/p" "$DATA/out.log")
  echo "== $db"
  JIEFEN_ADMIN_PASSWORD="$PASSWORD" "$BIN/jiefen-loadtest-rest" --url "http://127.0.0.1:$PORT" --cases "$CASES" --rate "$RATE" --duration "$DURATION" || true
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  rm -rf "$DATA"
done
