#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis on free loopback ports in temporary directories, for tests.
# Usage: source scripts/services.sh; start_pg; start_redis; ...; stop_services
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
start_pg() {
  PGTMP=$(mktemp -d); chmod 755 "$PGTMP"
  PGPORT=$(free_port)
  local as=()
  # initdb refuses to run as root: run the server as the postgres user the package creates.
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PGTMP"; as=(runuser -u postgres --); fi
  "${as[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --no-sync >"$PGTMP/initdb.log"
  "${as[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 30 \
    -o "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
  psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAtc 'create database jiefen_test' >/dev/null
  export PGTMP PGPORT JIEFEN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/jiefen_test"
  # For the test that restarts the server under load.
  export JIEFEN_TEST_PG_DATA="$PGTMP/data" JIEFEN_TEST_PG_BIN="$PGBIN"
}
start_redis() {
  RTMP=$(mktemp -d); RPORT=$(free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RTMP" \
    --daemonize yes --pidfile "$RTMP/redis.pid" --logfile "$RTMP/redis.log"
  for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  export RTMP RPORT JIEFEN_TEST_REDIS_URL="redis://127.0.0.1:$RPORT/"
}
# An S3-compatible server (moto, from PyPI, in a venv kept under ~/.cache) with one bucket.
start_s3() {
  local venv="${JIEFEN_MOTO_VENV:-$HOME/.cache/jiefen/moto-venv}"
  if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv" >/dev/null
    "$venv/bin/pip" install -q 'moto[server]' >/dev/null
  fi
  S3TMP=$(mktemp -d); S3PORT=$(free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$S3PORT" >"$S3TMP/moto.log" 2>&1 &
  echo $! >"$S3TMP/pid"
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$S3PORT/" 2>/dev/null && break; sleep 0.1; done
  curl -fsS -X PUT "http://127.0.0.1:$S3PORT/jiefen-test" -o /dev/null
  export S3TMP S3PORT JIEFEN_TEST_S3_URL="http://127.0.0.1:$S3PORT"
}
stop_services() {
  if [ -n "${S3TMP:-}" ]; then
    kill "$(cat "$S3TMP/pid" 2>/dev/null)" 2>/dev/null || true
    rm -rf "$S3TMP"; S3TMP=""
  fi
  if [ -n "${PGTMP:-}" ]; then
    local as=(); [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PGTMP"; PGTMP=""
  fi
  if [ -n "${RTMP:-}" ]; then
    kill "$(cat "$RTMP/redis.pid" 2>/dev/null)" 2>/dev/null || true
    sleep 0.2; rm -rf "$RTMP"; RTMP=""
  fi
}
