#!/usr/bin/env bash
# The Kluis test suite: what `README.md` calls "run the tests".
# Needs only a Rust toolchain and a C compiler. Optional parts run when their
# prerequisites are there (CI installs them all): the PostgreSQL broker suite
# when KLUIS_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (all crates except the tray app)"
cargo test

echo "== fuzz targets build"
cargo build --manifest-path fuzz/Cargo.toml --bins
