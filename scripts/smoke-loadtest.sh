#!/usr/bin/env bash
# A short run of jiefen-loadtest against a debug `jiefen serve`, failing on its thresholds: the
# smoke version of scripts/bench.sh that scripts/test.sh runs. Uses the built debug binaries.
# Usage: scripts/smoke-loadtest.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
DIR=$(mktemp -d)
free_port() { python3 -c 'import socket,sys;s=socket.socket(socket.AF_INET,getattr(socket,sys.argv[1]));s.bind(("127.0.0.1",0));print(s.getsockname()[1])' "$1"; }
PORT=$(free_port SOCK_STREAM)
MEDIA=$(free_port SOCK_DGRAM)
RUST_LOG=warn target/debug/jiefen serve --no-demo --data-dir "$DIR" --listen "127.0.0.1:$PORT" --media-port "$MEDIA" --media-workers 1 >"$DIR/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
# One publisher of the FFmpeg-made simulcast fixtures to three subscribers, everyone also sending
# five data channel messages a second, then a 1:1 pair that churns: every stream must arrive
# intact, nearly all packets, a key frame within 5 s, most messages relayed to everyone.
target/debug/jiefen-loadtest --url "http://127.0.0.1:$PORT" --data-dir "$DIR" --server-pid "$PID" \
  --scenario broadcast --subscribers 3 --duration "${SECS}s" --data-rate 5 \
  --all-streams --no-corrupt --min-delivery 0.97 --max-join 5s --min-data-delivery 0.8 --json "$DIR/broadcast.json" | grep -v '^{'
target/debug/jiefen-loadtest --url "http://127.0.0.1:$PORT" --data-dir "$DIR" --server-pid "$PID" \
  --scenario churn --rooms 1 --publishers 2 --subscribers 1 --churn-every 3s --duration "$((SECS + 10))s" \
  --all-streams --no-corrupt --min-delivery 0.95 --max-join 5s | grep -v '^{'
echo "smoke-loadtest: passed"
