#!/usr/bin/env bash
# No-change rescan of 10,000 synced files: time of one full reconcile
# (scan both trees, load the index, plan nothing) triggered by `kluis sync`.
. "$(dirname "$0")/sync-common.sh"
N=${N:-10000}
command -v rclone >/dev/null && HAVE_RCLONE=1 || HAVE_RCLONE=0
make_tree "$BENCH_DIR/plain" "$N"
setup_pair
start_agent --no-fsync
"$KLUIS" unlock
wait_synced "$N"
last() { "$KLUIS" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['pairs'][0]['last_sync'])"; }
times=()
for i in 1 2 3 4 5; do
  before=$(last)
  t0=$(now)
  "$KLUIS" sync
  while [ "$(last)" = "$before" ]; do sleep 0.01; done
  t1=$(now)
  times+=("$(echo "$t1 - $t0" | bc -l)")
done
stop_agent
best=$(printf '%s\n' "${times[@]}" | sort -n | head -1)
printf 'kluis no-change rescan of %d files: best %.3f s (runs: %s)\n' "$N" "$best" "${times[*]}"
if [ "$HAVE_RCLONE" = 1 ]; then
  export RCLONE_CONFIG_KCRYPT_TYPE=crypt RCLONE_CONFIG_KCRYPT_REMOTE="$BENCH_DIR/rclone-out"
  export RCLONE_CONFIG_KCRYPT_PASSWORD=$(rclone obscure bench-passphrase)
  rclone sync "$BENCH_DIR/plain" kcrypt: --transfers 8 --checkers 8
  t0=$(now); rclone sync "$BENCH_DIR/plain" kcrypt: --checkers 8; t1=$(now)
  r=$(echo "$t1 - $t0" | bc -l)
  printf 'rclone no-change sync: %.3f s   ratio %.2fx\n' "$r" "$(echo "$r / $best" | bc -l)"
fi
rm -rf "$BENCH_DIR"
