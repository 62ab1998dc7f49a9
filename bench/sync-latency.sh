#!/usr/bin/env bash
# Change-to-ciphertext latency: save a small file 100 times (editor-style,
# temp + rename) and time until its ciphertext changes in the mirror; p50
# and p95, quiet period included. Goal: p50 under 1 s. rclone has no watcher,
# so the peer figure is one `rclone sync` of the same single change.
. "$(dirname "$0")/sync-common.sh"
SAVES=${SAVES:-100}
mkdir -p "$BENCH_DIR/plain"
setup_pair
start_agent
"$KLUIS" unlock
echo first > "$BENCH_DIR/plain/note.txt"
wait_synced 1
python3 - "$BENCH_DIR/plain/note.txt" "$BENCH_DIR/sync/Kluis" "$SAVES" <<'PY'
import os, sys, time, statistics
note, mirror, saves = sys.argv[1], sys.argv[2], int(sys.argv[3])
def cipher():
    for d, _, fs in os.walk(mirror):
        for f in fs:
            if f.endswith(".kls"):
                st = os.stat(os.path.join(d, f))
                return (st.st_ino, st.st_mtime_ns)
lat = []
for i in range(saves):
    before = cipher()
    tmp = note + ".tmp~"
    with open(tmp, "w") as f:
        f.write(f"save {i} " * (1 + i % 7))
    os.rename(tmp, note)
    t0 = time.monotonic()
    while cipher() == before:
        time.sleep(0.005)
    lat.append(time.monotonic() - t0)
    time.sleep(0.05)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"kluis change-to-ciphertext over {saves} saves: p50 {p(0.5)*1000:.0f} ms, p95 {p(0.95)*1000:.0f} ms, max {lat[-1]*1000:.0f} ms")
PY
stop_agent
if command -v rclone >/dev/null; then
  export RCLONE_CONFIG_KCRYPT_TYPE=crypt RCLONE_CONFIG_KCRYPT_REMOTE="$BENCH_DIR/rclone-out"
  export RCLONE_CONFIG_KCRYPT_PASSWORD=$(rclone obscure bench-passphrase)
  rclone sync "$BENCH_DIR/plain" kcrypt:
  echo "save again" > "$BENCH_DIR/plain/note.txt"
  t0=$(now); rclone sync "$BENCH_DIR/plain" kcrypt:; t1=$(now)
  printf 'rclone sync of one change (no watcher; run by hand or cron): %.0f ms\n' "$(echo "($t1 - $t0) * 1000" | bc -l)"
fi
rm -rf "$BENCH_DIR"
