#!/usr/bin/env bash
# Initial encryption of 10,000 small files (1–8 KiB, 100 directories):
# the Kluis agent (fsync on, then off) against `rclone sync` to a local
# crypt remote. Prints files/s and the ratio. Goal: at least 2x rclone.
#
#   bash bench/sync-initial.sh                     # one round
#   ROUNDS=3 bash bench/sync-initial.sh            # interleaved rounds, medians
#   KLUIS_BASE=/path/to/old/kluis ROUNDS=3 ...     # also an older build, side by side
#
# Rounds interleave the tools (rclone, kluis, kluis without fsync, ...) so
# that a burst of load from elsewhere hits them alike; the medians count.
#
# Every run writes into directories of its own, and nothing is deleted until
# the last round has ended. On ext4 without a journal, the inode allocator
# skips every inode freed in the last 60 s (360 s while its table block is
# dirty), one by one (ext4 recently_deleted()), so creating 10,000 files
# right after deleting 20,000 costs several times what it costs on a
# fresh disk, and the cost fell on whichever tool ran after a cleanup.
. "$(dirname "$0")/sync-common.sh"
N=${N:-10000}
ROUNDS=${ROUNDS:-1}
command -v rclone >/dev/null || { echo "needs rclone (apt-get install -y rclone)" >&2; exit 2; }
make_tree "$BENCH_DIR/src" "$N"

# rclone crypt remote over a local directory, configured through the environment.
export RCLONE_CONFIG_KCRYPT_TYPE=crypt
export RCLONE_CONFIG_KCRYPT_PASSWORD=$(rclone obscure bench-passphrase)
# run_rclone NAME / run_kluis NAME [agent flags]: one timed run, in
# $BENCH_DIR/NAME (the runs are in subshells, so the caller names them).
run_rclone() {
  export RCLONE_CONFIG_KCRYPT_REMOTE="$BENCH_DIR/$1/rclone-out"
  quiesce; local t0; t0=$(now)
  rclone sync "$BENCH_DIR/src" kcrypt: --transfers 8 --checkers 8
  local t1; t1=$(now)
  echo "$t1 - $t0" | bc -l
}

run_kluis() {
  local d=$BENCH_DIR/$1
  shift
  mkdir -p "$d"
  cp -r "$BENCH_DIR/src" "$d/plain"
  setup_pair "$d/plain" "$d/sync/Kluis"
  # Both tools start on a quiet file system. Until 2026-11-29 the sync
  # came after the unlock: the agent was already at work while it flushed
  # the plaintext copy, a head start of a few hundred ms that the timing
  # did not see.
  quiesce
  start_agent "$@"
  # Opening the identity (Argon2) is not timed; the unlock starts the
  # sync, and the clock starts at its reply.
  unlock_and_time "$N"
  stop_agent
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A times
labels=("rclone sync (crypt)" "kluis agent (fsync)" "kluis agent (no fsync)")
[ -n "${KLUIS_BASE:-}" ] && labels+=("base kluis (fsync)" "base kluis (no fsync)")
new_kluis=$KLUIS
for r in $(seq "$ROUNDS"); do
  times[0]+="$(run_rclone "r$r-rclone") "
  KLUIS=$new_kluis
  times[1]+="$(run_kluis "r$r-kluis") "
  times[2]+="$(run_kluis "r$r-kluis-nofsync" --no-fsync) "
  if [ -n "${KLUIS_BASE:-}" ]; then
    KLUIS=$KLUIS_BASE
    times[3]+="$(run_kluis "r$r-base") "
    times[4]+="$(run_kluis "r$r-base-nofsync" --no-fsync) "
  fi
  echo "round $r: ${times[*]}" >&2
done
KLUIS=$new_kluis

echo "$N files, $ROUNDS round(s), median; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
rclone_s=$(printf '%s\n' ${times[0]} | median)
for i in "${!labels[@]}"; do
  s=$(printf '%s\n' ${times[$i]} | median)
  if [ "$i" = 0 ]; then
    printf '%-26s %8.2f s %9.0f files/s\n' "${labels[$i]}" "$s" "$(echo "$N / $s" | bc -l)"
  else
    printf '%-26s %8.2f s %9.0f files/s  ratio %.2fx\n' "${labels[$i]}" "$s" "$(echo "$N / $s" | bc -l)" "$(echo "$rclone_s / $s" | bc -l)"
  fi
done
rm -rf "$BENCH_DIR"
