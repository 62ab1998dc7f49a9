#!/usr/bin/env bash
# Sharing a folder with one more person rewrites only each file's header
# (kluis_client::share::share_folder), in place: the new stanza takes bytes
# from the header's padding (FORMAT.md §4.7), under one journal per 512
# files. The alternative is re-encrypting every file from scratch (temp
# file, fsync, rename). Two runs: 10,000 small files, then fewer large
# ones; the last line compares the time per file of the two runs, which is
# flat for sharing (it follows the number of files) and grows with the size
# for re-encryption.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p kluis-client --example share_bench
BIN="$CARGO_TARGET_DIR/release/examples/share_bench"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/kluis-share-bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
# BASE_SHARE_BENCH=path/to/an/older/share_bench runs that build too, in
# alternating order with this one (ROUNDS times, default 1 without a base
# and 3 with one), and prints the medians and new/old ratios.
base=${BASE_SHARE_BENCH:-}
rounds=${ROUNDS:-$([ -n "$base" ] && echo 3 || echo 1)}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
results="$DIR/results"
for r in $(seq "$rounds"); do
  order="new"
  [ -n "$base" ] && { [ $((r % 2)) -eq 1 ] && order="base new" || order="new base"; }
  for which in $order; do
    bin=$BIN; [ "$which" = base ] && bin=$base
    small=$("$bin" "$DIR/$which-a$r" "${N:-10000}" "${SIZE:-4096}")
    echo "$which round $r: $small"
    large=$("$bin" "$DIR/$which-b$r" "${N_LARGE:-200}" "${SIZE_LARGE:-4194304}")
    echo "$which round $r: $large"
    rm -rf "$DIR/$which-a$r" "$DIR/$which-b$r"
    for run in small large; do
      line=${!run}
      echo "$which $run $(field "$line" share_ms_per_file) $(field "$line" reencrypt_ms_per_file) $(field "$line" size)" >> "$results"
    done
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    which, run, share, reenc, size = line.split()
    rows.setdefault((which, run), []).append((float(share), float(reenc), int(size)))
def med(which, run, i): return statistics.median(r[i] for r in rows[(which, run)])
s1, s2 = med("new", "small", 0), med("new", "large", 0)
r1, r2 = med("new", "small", 1), med("new", "large", 1)
z1, z2 = rows[("new", "small")][0][2], rows[("new", "large")][0][2]
print(f"per file (medians), {z1}-byte files vs {z2}-byte files ({z2 / z1:.0f}x the size): "
      f"share {s1:.3f} vs {s2:.3f} ms ({s2 / s1:.2f}x), re-encrypt {r1:.3f} vs {r2:.3f} ms ({r2 / r1:.2f}x)")
if ("base", "small") in rows:
    for run in ("small", "large"):
        b, n = med("base", run, 0), med("new", run, 0)
        print(f"share, {run} files: older build {b:.3f} ms/file, this build {n:.3f} ms/file "
              f"(old/new {b / n:.2f}x, >1 means faster now; medians of {len(rows[('new', run)])} rounds)")
PY
