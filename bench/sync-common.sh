# Shared helpers for bench/sync-*.sh (sourced, not run).
# KLUIS=path/to/kluis (default: $CARGO_TARGET_DIR/release/kluis, then target/release/kluis)
# BENCH_DIR=where to build trees (default: a fresh dir under /tmp; set it to
# an ext4 path or a tmpfs mount to compare file systems).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
KLUIS=${KLUIS:-}
if [ -z "$KLUIS" ]; then
  for k in "${CARGO_TARGET_DIR:-$root/target}/release/kluis" "$root/target/release/kluis"; do
    [ -x "$k" ] && KLUIS=$k && break
  done
fi
[ -x "${KLUIS:-}" ] || { echo "build first: cargo build --release -p kluis-cli (or set KLUIS=)" >&2; exit 2; }
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/kluis-bench.XXXXXX)}
export KLUIS_HOME=$BENCH_DIR/home KLUIS_PASSPHRASE=bench-passphrase KLUIS_DEVICE=bench
agent_pid=
cleanup() { [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

now() { date +%s.%N; }

# quiesce: before a timed run, write everything out, and where we may
# (root, fsfreeze, BENCH_DIR not on /) freeze and thaw its file system,
# which also writes the journal's metadata back in place: otherwise the
# tool timed next pays, in journal checkpoints, for what the one before
# it wrote, and which tool that is depends on the order of the runs.
quiesce() {
  sync
  local mnt; mnt=$(findmnt -n -o TARGET -T "$BENCH_DIR" 2>/dev/null || true)
  if [ "$(id -u)" = 0 ] && [ -n "$mnt" ] && [ "$mnt" != / ] && command -v fsfreeze >/dev/null; then
    fsfreeze -f "$mnt" && fsfreeze -u "$mnt"
  fi
}

# make_tree DIR N: N files of 1–8 KiB in about 100 directories (seeded).
make_tree() {
  python3 - "$1" "$2" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
r = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"dir{i % 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.txt"), "wb") as f:
        f.write(r.randbytes(r.randint(1024, 8192)))
PY
}

# setup_pair [PLAIN SYNC]: a new identity in a fresh $KLUIS_HOME, and PLAIN
# (default $BENCH_DIR/plain) paired with SYNC (default $BENCH_DIR/sync/Kluis).
# start_agent [agent flags...]: start the agent locked, wait for its socket.
setup_pair() {
  rm -rf "$KLUIS_HOME"; mkdir -p "$KLUIS_HOME"
  "$KLUIS" keygen >/dev/null 2>&1
  "$KLUIS" folders add "${1:-$BENCH_DIR/plain}" "${2:-$BENCH_DIR/sync/Kluis}" >/dev/null
}
start_agent() {
  "$KLUIS" agent --locked "$@" 2>"$BENCH_DIR/agent.log" &
  agent_pid=$!
  for _ in $(seq 200); do [ -S "$KLUIS_HOME/agent.sock" ] && return 0; sleep 0.05; done
  echo "agent did not start" >&2; cat "$BENCH_DIR/agent.log" >&2; exit 1
}
stop_agent() { kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=; }

# wait_synced N: until the pair reports N synced files and is idle. One
# Python process polls the agent's socket every 20 ms over one connection:
# starting `kluis status` plus an interpreter per poll would take CPU from
# the agent being measured.
wait_synced() { poll_synced "$1"; }

# unlock_and_time N: unlock the agent over its socket and print the seconds
# from the unlock's reply to N synced files. The poller is started, and
# connected, before it sends the unlock: until 2026-12-06 the benchmark
# started it after `kluis unlock` returned, and its interpreter's start-up
# (over 100 ms of CPU behind a pyenv shim) ran inside the timed window,
# beside the agent on a 2-core machine.
unlock_and_time() { poll_synced "$1" unlock; }

poll_synced() {
  python3 - "$KLUIS_HOME/agent.sock" "$@" <<'PY'
import json, os, socket, sys, time
sock, want = sys.argv[1], int(sys.argv[2])
c = socket.socket(socket.AF_UNIX); c.connect(sock); f = c.makefile("rwb")
def ask(req):
    f.write(json.dumps(req).encode() + b"\n"); f.flush()
    return json.loads(f.readline())
t0 = None
if sys.argv[3:] == ["unlock"]:
    r = ask({"request": "unlock", "passphrase": os.environ["KLUIS_PASSPHRASE"]})
    if not (isinstance(r, dict) and r.get("response") == "ok"):
        sys.exit(f"unlock failed: {r}")
    t0 = time.monotonic()
while True:
    p = ask({"request": "status"})["pairs"][0]
    if p["synced_files"] == want and p["state"] == "idle" and p["deferred"] == 0:
        break
    time.sleep(0.02)
if t0 is not None:
    print(f"{time.monotonic() - t0:.6f}")
PY
}
