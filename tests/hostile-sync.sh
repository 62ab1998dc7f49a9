#!/usr/bin/env bash
# The hostile sync-client harness (crates/kluis-agent/tests/hostile, issue 17)
# run longer than the short seeded run that `cargo test` does: two devices of
# one user, a Dropbox stand-in that downloads in place in chunks, through temp
# files, makes "(dev-b's conflicted copy DATE)" copies of a device's own
# ciphertext and propagates deletions, while both agents are SIGKILLed and
# restarted. It fails if any version the user wrote is lost, if plaintext
# reaches a sync folder, or if the devices do not converge.
#
#   bash tests/hostile-sync.sh [SEED] [SECONDS] [ROUNDS]
#
# SEED defaults to a random one (printed; rerun with it), SECONDS of work per
# round to 600, ROUNDS to 1 (round i uses SEED+i). KLUIS_HOSTILE_CONVERGE_SECS
# (default 300) bounds the wait for convergence. RELEASE=1 builds optimised.
set -euo pipefail
cd "$(dirname "$0")/.."

seed="${1:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
secs="${2:-600}"
rounds="${3:-1}"
flags=()
[ -n "${RELEASE:-}" ] && flags+=(--release)

cargo test -p kluis-agent --test hostile "${flags[@]}" --no-run
for ((i = 0; i < rounds; i++)); do
  s=$((seed + i))
  echo "== round $((i + 1)) of $rounds: seed $s, $secs s"
  start=$(date +%s)
  KLUIS_HOSTILE_SEED="$s" KLUIS_HOSTILE_SECS="$secs" \
    cargo test -q -p kluis-agent --test hostile "${flags[@]}" -- hostile_sync --exact --nocapture 2>&1 |
    grep -v ' cloud: ' || { echo "== seed $s FAILED (full log: rerun without the grep)"; exit 1; }
  echo "== seed $s passed in $(($(date +%s) - start)) s"
done
