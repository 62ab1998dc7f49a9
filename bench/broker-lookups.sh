#!/usr/bin/env bash
# Directory lookups per second and p99 latency at 50 concurrent clients on
# loopback, with SQLite and with PostgreSQL. A script to run by hand, not a
# test. Needs `wrk` (Debian package) and, for PostgreSQL, a database URL in
# KLUIS_BENCH_POSTGRES_URL (or KLUIS_TEST_POSTGRES_URL); see .ci/broker.sh
# for how CI creates one.
#
#   bash bench/broker-lookups.sh            # 10 s per backend
#   DURATION=30s USERS=1000 bash bench/broker-lookups.sh
#
# Each lookup is an authenticated `GET /v1/directory?q=<e-mail>` answering
# one entry: a session-token check plus a prefix query. Every request picks
# one of the USERS sessions and one of their addresses at random (a wrk Lua
# script), so the broker's lookup cache cannot live off a single entry.
# Logging is at `warn` (per-request `info` lines would measure the
# terminal, not the broker).
#
# Each measurement follows a WARMUP (default 3s) run of the same load.
#
# BASE_BROKER_BIN=path/to/an/older/kluis-broker runs that build too, right
# before this one on each backend, and prints the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "install wrk: apt-get install -y wrk" >&2; exit 2; }

duration=${DURATION:-10s}
users=${USERS:-300}
connections=${CONNECTIONS:-50}
pg_url=${KLUIS_BENCH_POSTGRES_URL:-${KLUIS_TEST_POSTGRES_URL:-}}

# BROKER_BIN / SESSION_BIN: use prebuilt binaries (e.g. to compare two
# builds side by side) instead of building them here.
if [ -z "${BROKER_BIN:-}" ] || [ -z "${SESSION_BIN:-}" ]; then
  cargo build -q --release -p kluis-broker --bin kluis-broker
  cargo build -q --release -p kluis-account --example ci_session
  target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
fi
broker_bin=${BROKER_BIN:-$target_dir/release/kluis-broker}
session_bin=${SESSION_BIN:-$target_dir/release/examples/ci_session}

work=$(mktemp -d)
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
seed_file=${KLUIS_BENCH_OPRF_SEED_FILE:-$work/oprf-seed}
[ -f "$seed_file" ] || "$broker_bin" admin seed init --out "$seed_file" 2>/dev/null
# /metrics needs a token (issue 18.4); older builds ignore it.
metrics_token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

run_backend() {
  local name=$1 db_url=$2 port=$3 bin=$4
  local home="$work/$name-$port"
  mkdir -p "$home"
  # $KLUIS_HOME/broker.toml is read automatically: lift the registration
  # limits so the directory can be populated from one IP.
  cat >"$home/broker.toml" <<'TOML'
[limits]
register_per_ip = { max = 1000000, window_secs = 60 }
register_per_account = { max = 1000000, window_secs = 60 }
login_per_ip = { max = 1000000, window_secs = 60 }
login_per_account = { max = 1000000, window_secs = 60 }
TOML
  if [ -n "$db_url" ]; then export KLUIS_BROKER_DATABASE_URL="$db_url"; else unset KLUIS_BROKER_DATABASE_URL; fi
  # One OPRF seed for every run on a database: a broker refuses a seed its
  # database was not set up with (older builds ignore this variable). With a
  # reused PostgreSQL database, keep KLUIS_BENCH_OPRF_SEED_FILE between runs.
  KLUIS_BROKER_OPRF_SEED_FILE="$seed_file" KLUIS_BROKER_METRICS_TOKEN="$metrics_token" \
  KLUIS_HOME="$home" KLUIS_BROKER_REGISTRATION=open KLUIS_BROKER_LOG=warn \
    "$bin" serve --listen "127.0.0.1:$port" 2>"$home/broker.log" &
  broker_pid=$!
  for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  local run
  run=$(date +%s%N)
  # Populate the directory (test-only KSF parameters: registration speed is not measured here).
  local i token=""
  local lua="$home/lookups.lua"
  {
    echo 'local t, q = {}, {}'
    for i in $(seq 1 "$users"); do
      read -r _ token < <("$session_bin" "http://127.0.0.1:$port" "$home/client-$i" "bench-$run-$i@example.org")
      rm -rf "$home/client-$i"
      echo "t[$i] = \"Bearer $token\"; q[$i] = \"/v1/directory?q=bench-$run-$i@example.org\""
    done
    echo 'math.randomseed(os.time())'
    echo 'request = function()'
    echo '  wrk.headers["Authorization"] = t[math.random(#t)]'
    echo '  return wrk.format("GET", q[math.random(#q)])'
    echo 'end'
  } >"$lua"
  local out="$home/wrk.txt"
  # Warm-up (not measured), the same for every build: connections open,
  # pools filled, and — with a cache — the first lookups of each session
  # and address answered by the database.
  wrk -t2 -c"$connections" -d"${WARMUP:-3s}" -s "$lua" "http://127.0.0.1:$port" >/dev/null
  wrk -t2 -c"$connections" -d"$duration" --latency -s "$lua" \
    "http://127.0.0.1:$port" >"$out"
  local rps p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
  if [ -n "${VERBOSE:-}" ]; then cat "$out"; fi
  printf '%-10s %-5s users=%-5s conns=%-3s lookups/s=%-10s p99=%-8s non-2xx=%s\n' \
    "$name" "$5" "$users" "$connections" "$rps" "$p99" "${non2xx:-0}"
  last_rps=$rps
  # The lookup cache's own counters (absent from builds without one).
  curl -fsS -H "Authorization: Bearer $metrics_token" "http://127.0.0.1:$port/metrics" | awk '/^kluis_lookup_cache_(hits|misses)_total/ {printf "           %s %s\n", $1, $2}'
  kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; broker_pid=""
}

compare() {
  local name=$1 db_url=$2 port=$3
  local base_rps=""
  if [ -n "${BASE_BROKER_BIN:-}" ]; then
    run_backend "$name" "$db_url" "$port" "$BASE_BROKER_BIN" base
    base_rps=$last_rps
  fi
  run_backend "$name" "$db_url" "$((port + 1))" "$broker_bin" this
  if [ -n "$base_rps" ]; then
    awk -v a="$last_rps" -v b="$base_rps" -v n="$name" \
      'BEGIN { printf "%-10s this/base lookups/s ratio: %.2fx\n", n, a / b }'
  fi
}

echo "broker directory lookups, wrk -t2 -c$connections -d$duration, $(nproc) cores, random session and query per request"
compare sqlite "" 18760
if [ -n "$pg_url" ]; then
  compare postgres "$pg_url" 18762
else
  echo "postgres   skipped: set KLUIS_BENCH_POSTGRES_URL"
fi
