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
small=$("$BIN" "$DIR/a" "${N:-10000}" "${SIZE:-4096}")
echo "$small"
large=$("$BIN" "$DIR/b" "${N_LARGE:-200}" "${SIZE_LARGE:-4194304}")
echo "$large"
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
awk -v s1="$(field "$small" share_ms_per_file)" -v s2="$(field "$large" share_ms_per_file)" \
    -v r1="$(field "$small" reencrypt_ms_per_file)" -v r2="$(field "$large" reencrypt_ms_per_file)" \
    -v z1="$(field "$small" size)" -v z2="$(field "$large" size)" 'BEGIN {
  printf "per file, %d-byte files vs %d-byte files (%.0fx the size): share %.3f vs %.3f ms (%.2fx), re-encrypt %.3f vs %.3f ms (%.2fx)\n",
    z1, z2, z2 / z1, s1, s2, s2 / s1, r1, r2, r2 / r1 }'
