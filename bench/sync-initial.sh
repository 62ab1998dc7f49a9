#!/usr/bin/env bash
# Initial encryption of 10,000 small files (1–8 KiB, 100 directories):
# the Kluis agent (fsync on, then off) against `rclone sync` to a local
# crypt remote. Prints files/s and the ratio. Goal: at least 2x rclone.
. "$(dirname "$0")/sync-common.sh"
N=${N:-10000}
command -v rclone >/dev/null || { echo "needs rclone (apt-get install -y rclone)" >&2; exit 2; }
make_tree "$BENCH_DIR/src" "$N"

# rclone crypt remote over a local directory, configured through the environment.
export RCLONE_CONFIG_KCRYPT_TYPE=crypt
export RCLONE_CONFIG_KCRYPT_REMOTE="$BENCH_DIR/rclone-out"
export RCLONE_CONFIG_KCRYPT_PASSWORD=$(rclone obscure bench-passphrase)
sync; t0=$(now)
rclone sync "$BENCH_DIR/src" kcrypt: --transfers 8 --checkers 8
t1=$(now)
rclone_s=$(echo "$t1 - $t0" | bc -l)

run_kluis() {
  rm -rf "$BENCH_DIR/plain" "$BENCH_DIR/sync"
  cp -r "$BENCH_DIR/src" "$BENCH_DIR/plain"
  setup_pair
  start_agent "$@"
  "$KLUIS" unlock   # opening the identity (Argon2) is not timed
  sync; local t0; t0=$(now)
  wait_synced "$N"
  local t1; t1=$(now)
  stop_agent
  echo "$t1 - $t0" | bc -l
}
kluis_fsync=$(run_kluis)
kluis_nofsync=$(run_kluis --no-fsync)

printf '%-28s %8.2f s %9.0f files/s\n' "rclone sync (crypt)" "$rclone_s" "$(echo "$N / $rclone_s" | bc -l)"
printf '%-28s %8.2f s %9.0f files/s  ratio %.2fx\n' "kluis agent (fsync)" "$kluis_fsync" "$(echo "$N / $kluis_fsync" | bc -l)" "$(echo "$rclone_s / $kluis_fsync" | bc -l)"
printf '%-28s %8.2f s %9.0f files/s  ratio %.2fx\n' "kluis agent (no fsync)" "$kluis_nofsync" "$(echo "$N / $kluis_nofsync" | bc -l)" "$(echo "$rclone_s / $kluis_nofsync" | bc -l)"
rm -rf "$BENCH_DIR"
