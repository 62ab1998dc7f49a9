#!/usr/bin/env bash
# Sharing a folder with one more person rewrites only each file's header
# (kluis_agent::share::share_folder); the alternative is re-encrypting every
# file from scratch. Both fsync and rename every file. Two runs: 10,000
# small files, then fewer large ones, to show the header-only cost follows
# the number of files and re-encryption follows their size.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p kluis-agent --example share_bench
BIN="$CARGO_TARGET_DIR/release/examples/share_bench"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/kluis-share-bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
"$BIN" "$DIR/a" "${N:-10000}" "${SIZE:-4096}"
"$BIN" "$DIR/b" "${N_LARGE:-200}" "${SIZE_LARGE:-4194304}"
