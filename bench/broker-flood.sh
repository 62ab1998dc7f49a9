#!/usr/bin/env bash
# Legitimate /healthz latency (p50, p99) on loopback while 5,000 hostile
# connections are attempted against one broker (issue 18.1): silent TCP,
# slow login bodies and idle h2c, a third each, from 127.0.0.2 (one client)
# — or spread over HOSTILE_FROM. A script to run by hand, not a test; it
# stops by itself after about 3 + RAMP + DURATION_S + 10 seconds.
#
#   bash bench/broker-flood.sh
#   HOSTILE=5000 HOSTILE_FROM=127.0.0.2,127.0.0.3 DURATION_S=30 bash bench/broker-flood.sh
#   BROKER_BIN=target/debug/kluis-broker bash bench/broker-flood.sh   # no release build
#
# The broker runs with the default [http] limits (8192 connections, 512 per
# address, 60 s idle, 30 s per request) unless HTTP_TOML replaces the [http]
# table. BASE_BROKER_BIN=path/to/an/older/kluis-broker runs that build
# first, without an [http] table (older builds refuse the key).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }

if [ -z "${BROKER_BIN:-}" ]; then
  cargo build -q --release -p kluis-broker --bin kluis-broker
  target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
fi
broker_bin=${BROKER_BIN:-$target_dir/release/kluis-broker}
# The client needs one descriptor per hostile connection. The broker gets
# what the shipped unit gives it (LimitNOFILE=65536, or the hard limit if
# lower); the base build gets BASE_NOFILE, by default the 1024 of the old unit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
hard=$(ulimit -Hn)
nofile=65536
if [ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ]; then nofile=$hard; fi

work=$(mktemp -d)
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

run() {
  local name=$1 bin=$2 http=$3 port=$4 limit=$5
  local home="$work/$name"
  mkdir -p "$home"
  printf '%s\n' "$http" >"$home/broker.toml"
  (ulimit -n "$limit" && KLUIS_HOME="$home" KLUIS_BROKER_LOG=warn \
    exec "$bin" serve --listen "127.0.0.1:$port" 2>"$home/broker.log") &
  broker_pid=$!
  for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null && break
    sleep 0.2
  done
  echo "== $name ($bin), broker nofile $limit"
  timeout $((60 + ${RAMP:-2} + ${DURATION_S:-15})) python3 bench/broker-flood.py "$port" || echo "client: exit $?"
  echo "broker warnings: $(grep -c WARN "$home/broker.log" || true); first: $(grep -m1 WARN "$home/broker.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220)"
  kill "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
  broker_pid=""
}

date -u +"%Y-%m-%d %H:%M UTC, $(nproc) cores, $(uname -sr)"
echo "HOSTILE=${HOSTILE:-5000} HOSTILE_FROM=${HOSTILE_FROM:-127.0.0.2} RAMP=${RAMP:-2}s DURATION_S=${DURATION_S:-15}"
if [ -n "${BASE_BROKER_BIN:-}" ]; then
  run base "$BASE_BROKER_BIN" "" 18751 "${BASE_NOFILE:-1024}"
fi
run current "$broker_bin" "${HTTP_TOML:-[http]}" 18752 "$nofile"
