#!/usr/bin/env bash
# Agent idle cost with 10,000 files watched: CPU time used over a quiet
# window and resident memory. Goals: RSS under 40 MiB, no measurable CPU.
. "$(dirname "$0")/sync-common.sh"
# As packaging/systemd/kluis-agent.service sets it.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
N=${N:-10000}
WINDOW=${WINDOW:-30}
make_tree "$BENCH_DIR/plain" "$N"
setup_pair
start_agent --no-fsync
"$KLUIS" unlock
wait_synced "$N"
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
hz=$(getconf CLK_TCK)
c0=$(ticks); sleep "$WINDOW"; c1=$(ticks)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
stop_agent
printf 'kluis agent idle, %d files watched: CPU %.2f s over %d s (%.3f%%), RSS %.1f MiB (peak %.1f MiB)\n' \
  "$N" "$(echo "($c1 - $c0) / $hz" | bc -l)" "$WINDOW" "$(echo "($c1 - $c0) / $hz / $WINDOW * 100" | bc -l)" \
  "$(echo "$rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)"
echo "(rclone has no resident watcher to compare; rclone mount is a different model)"
rm -rf "$BENCH_DIR"
