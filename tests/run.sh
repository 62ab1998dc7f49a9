#!/usr/bin/env bash
# The Kluis test suite: what `README.md` calls "run the tests".
# Needs only a Rust toolchain and a C compiler. Optional parts run when their
# prerequisites are there (CI installs them all): the PostgreSQL broker suite
# when KLUIS_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (all crates except the tray app)"
cargo test

echo "== interop: the independent decryptor written from docs/FORMAT.md"
if python3 -c 'import cryptography.hazmat.primitives.asymmetric.mlkem, cryptography.hazmat.primitives.kdf.argon2' 2>/dev/null; then
  KLUIS_BIN="$PWD/target/debug/kluis" python3 tests/interop/test_interop.py
elif [ "${KLUIS_REQUIRE_INTEROP:-}" = 1 ]; then
  echo "python3 package cryptography>=46 is missing" >&2
  exit 1
else
  echo "SKIPPED: pip install 'cryptography>=46' to run it"
fi

echo "== fuzz targets build"
cargo build --manifest-path fuzz/Cargo.toml --bins
