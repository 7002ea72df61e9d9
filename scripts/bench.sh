#!/usr/bin/env bash
# Measures the SFU with jiefen-loadtest against a release `jiefen serve` on loopback and prints
# the figures quoted in docs/benchmarks.md. Usage: scripts/bench.sh [seconds per scenario]
# (the churn scenario runs as long; give 600 for the issue's ten minutes).
# Both the server and the synthetic participants run on this machine; the server's own CPU time
# and RSS come from /proc/<pid>, forwarded packets from /metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
cargo build --release -q -p jiefen -p jiefen-loadtest
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
MEDIA=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
RUST_LOG=warn target/release/jiefen serve --no-demo --data-dir "$DIR" --listen "127.0.0.1:$PORT" --media-port "$MEDIA" --media-workers 1 >"$DIR/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 50); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
forwarded() { curl -fs "127.0.0.1:$PORT/metrics" | awk '/^jiefen_media_packets_forwarded_total/{print $2}'; }
run() {
  local name=$1; shift
  local before; before=$(forwarded)
  echo "== $name"
  target/release/jiefen-loadtest --url "http://127.0.0.1:$PORT" --data-dir "$DIR" --server-pid "$PID" --duration "${SECS}s" "$@" | grep -v '^{'
  local after; after=$(forwarded)
  echo "  packets forwarded by the server: $((after - before)) ($(( (after - before) / SECS ))/s)"
}
# The shipped scenarios with the FFmpeg-made fixtures (VP8 simulcast 180p/360p/720p + Opus).
run "one publisher to 10 subscribers (1 room)" --scenario broadcast
run "1:1 rooms x 8" --scenario one-to-one
run "6-person room, everyone publishing" --scenario mesh6
# Churn: rooms of 4 publishers + 2 viewers, one participant replaced every second.
run "churn (2 rooms of 6, one replaced per second)" --scenario churn --chart "target/churn.png"
