#!/usr/bin/env bash
# jiefen and Janus (VideoRoom) side by side on this machine: the same jiefen-loadtest scenarios
# against each, alternating, and a table with the ratio for each figure.
# Usage: scripts/bench-vs-janus.sh [seconds per run] [rounds]        (root: it needs a network
# namespace). Release builds; both servers and the participants share the machine.
#
# Janus (libnice) never gathers candidates on a LOOPBACK-flagged interface, so everything runs in a
# private network namespace with lo plus an ifb link "jlo" carrying 127.0.0.2: Janus offers
# 127.0.0.2, jiefen listens on 127.0.0.1, and the participants bind 127.0.0.2 for both.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
ROUNDS=${2:-1}
if ! command -v janus >/dev/null; then
  echo "== installing janus"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends janus >/dev/null
fi
scripts/deps.sh run >/dev/null
command -v ffmpeg >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg >/dev/null; }
cargo build --release -q -p jiefen -p jiefen-loadtest
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
scripts/janus-config.sh "$WORK/janus" >/dev/null
cat > "$WORK/summary.py" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['streams_receiving']}/{r['streams_expected']} streams, delivery {r['delivery'] * 100:.2f}%, CPU {r['server_cpu_percent']:.1f}%")
PY
export WORK SECS ROUNDS
unshare -n bash -c '
set -euo pipefail
ip link set lo up
ip link add jlo type ifb && ip addr add 127.0.0.2/32 dev jlo && ip link set jlo up
janus -F "$WORK/janus" -C "$WORK/janus/janus.jcfg" -o -N -L "$WORK/janus.log" >/dev/null 2>&1 &
JANUS=$!
RUST_LOG=warn target/release/jiefen serve --no-demo --data-dir "$WORK/jiefen" --listen 127.0.0.1:18080 --media-port 17880 --media-workers 1 >"$WORK/jiefen.log" 2>&1 &
JIEFEN=$!
trap "kill $JANUS $JIEFEN 2>/dev/null; wait 2>/dev/null" EXIT
for _ in $(seq 150); do curl -sf -m1 http://127.0.0.1:8088/janus/info >/dev/null && curl -sf -m1 127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done
run() {
  local target=$1 scenario=$2; shift 2
  local out="$WORK/$scenario-$target-$round.json"
  if [ "$target" = jiefen ]; then
    target/release/jiefen-loadtest --url http://127.0.0.1:18080 --data-dir "$WORK/jiefen" --server-pid $JIEFEN \
      --bind 127.0.0.2:0 --scenario "$scenario" --duration "${SECS}s" --json "$out" "$@" >/dev/null
  else
    target/release/jiefen-loadtest --janus http://127.0.0.1:8088/janus --server-pid $JANUS \
      --bind 127.0.0.2:0 --scenario "$scenario" --duration "${SECS}s" --json "$out" "$@" >/dev/null
  fi
  echo "  $scenario on $target: $(python3 "$WORK/summary.py" "$out")"
  sleep 2
}
for round in $(seq "$ROUNDS"); do
  # Alternate which server goes first, so neither always runs on a warmer machine.
  if [ $((round % 2)) = 1 ]; then order="jiefen janus"; else order="janus jiefen"; fi
  for scenario in broadcast one-to-one mesh6; do
    for target in $order; do run "$target" "$scenario"; done
  done
done
' 
# Keep the reports (the work directory is removed on exit).
mkdir -p target/bench-vs-janus && cp "$WORK"/*.json target/bench-vs-janus/
python3 - "$WORK" <<'PY'
import json, glob, os, sys, statistics
work = sys.argv[1]
rows = [
    ("streams receiving", lambda r: f"{r['streams_receiving']}/{r['streams_expected']}", None),
    ("delivery %", lambda r: r["delivery"] * 100, "high"),
    ("received Mbit/s", lambda r: r["received_mbit_per_s"], "high"),
    ("server CPU % of a core", lambda r: r["server_cpu_percent"], "low"),
    ("CPU % per video stream", lambda r: r["server_cpu_percent_per_video_stream"], "low"),
    ("server RSS MiB", lambda r: r["server_rss_bytes"] / 1048576, "low"),
    ("join -> key frame median ms", lambda r: r["join_to_keyframe_ms_median"] or 0, "low"),
    ("one-way delay mean ms", lambda r: r["delay_ms_mean"], "low"),
    ("jitter mean ms", lambda r: r["jitter_ms_mean"], "low"),
    ("NACKs sent", lambda r: r["nacks_sent"], "low"),
    ("corrupt payloads", lambda r: r["corrupt"], "low"),
]
print(f"\n| scenario | figure | jiefen | Janus | jiefen / Janus |\n|---|---|---|---|---|")
for scenario in ["broadcast", "one-to-one", "mesh6"]:
    runs = {t: [json.load(open(f)) for f in sorted(glob.glob(os.path.join(work, f"{scenario}-{t}-*.json")))] for t in ["jiefen", "janus"]}
    if not runs["jiefen"] or not runs["janus"]:
        continue
    for name, get, _ in rows:
        vals = {t: [get(r) for r in runs[t]] for t in runs}
        if isinstance(vals["jiefen"][0], str):
            print(f"| {scenario} | {name} | {vals['jiefen'][-1]} | {vals['janus'][-1]} | |")
            continue
        a, b = statistics.mean(vals["jiefen"]), statistics.mean(vals["janus"])
        ratio = f"{a / b:.2f}" if b else "–"
        print(f"| {scenario} | {name} | {a:.2f} | {b:.2f} | {ratio} |")
PY
