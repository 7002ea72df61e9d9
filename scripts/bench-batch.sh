#!/usr/bin/env bash
# Server CPU with and without batched sends (sendmmsg): the same release server started with
# JIEFEN_MEDIA_SEND_BATCH=1 (one sendto per datagram) and =32, alternating, under the load
# generator. Usage: scripts/bench-batch.sh [seconds per run] [rounds] [scenario ...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
ROUNDS=${2:-2}
shift $(( $# > 2 ? 2 : $# )) || true
SCENARIOS=("${@:-broadcast}")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(broadcast)
cargo build --release -q -p jiefen -p jiefen-loadtest
OUT=target/bench-batch
mkdir -p "$OUT"
free_port() { python3 -c 'import socket,sys;s=socket.socket(socket.AF_INET,getattr(socket,sys.argv[1]));s.bind(("127.0.0.1",0));print(s.getsockname()[1])' "$1"; }
run() {
  local scenario=$1 batch=$2 round=$3
  local dir port media pid
  dir=$(mktemp -d)
  port=$(free_port SOCK_STREAM)
  media=$(free_port SOCK_DGRAM)
  JIEFEN_MEDIA_SEND_BATCH=$batch RUST_LOG=warn target/release/jiefen serve --no-demo --data-dir "$dir" \
    --listen "127.0.0.1:$port" --media-port "$media" --media-workers 1 >"$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  target/release/jiefen-loadtest --url "http://127.0.0.1:$port" --data-dir "$dir" --server-pid "$pid" \
    --scenario "$scenario" --duration "${SECS}s" --json "$OUT/$scenario-batch$batch-round$round.json" >/dev/null
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
  python3 - "$OUT/$scenario-batch$batch-round$round.json" "$scenario" "$batch" "$round" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<10} batch {sys.argv[3]:>2} round {sys.argv[4]}: server CPU {r['server_cpu_percent']:.1f}% "
      f"= {r['server_cpu_percent_per_video_stream']:.3f}% per video stream, delivery {100*r['delivery']:.2f}%, "
      f"received {r['received_mbit_per_s']:.1f} Mbit/s")
PY
}
for scenario in "${SCENARIOS[@]}"; do
  for round in $(seq 1 "$ROUNDS"); do
    # Alternate which goes first, so that drift on the machine does not favour one.
    if (( round % 2 )); then order="1 32"; else order="32 1"; fi
    for batch in $order; do run "$scenario" "$batch" "$round"; done
  done
done
