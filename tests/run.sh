#!/usr/bin/env bash
# The Kluis test suite: what `README.md` calls "run the tests".
# Needs only a Rust toolchain and a C compiler. Optional parts run when their
# prerequisites are there (CI installs them all): the PostgreSQL broker suite
# when KLUIS_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

# The OS-keyring tests need a session keyring. A desktop login has one; a
# bare shell or a CI container may not. Run the suite in a fresh, anonymous
# one when keyctl (Debian `keyutils`) is there; otherwise those tests say
# SKIPPED (CI sets KLUIS_REQUIRE_KEYRING=1 so that they cannot skip there).
if [ -z "${KLUIS_KEYRING_SESSION:-}" ] && command -v keyctl >/dev/null; then
  export KLUIS_KEYRING_SESSION=1
  exec keyctl session - bash "$0" "$@"
fi

echo "== layout: file sizes, import cycles, one version of each crypto crate"
python3 tests/structure.py

echo "== cargo test (all crates except the tray app)"
cargo test

echo "== kluis without the embedded broker: builds, and links no server code"
# `kluis-cli --no-default-features` leaves out the cargo feature
# `embedded-broker` (the broker `kluis start` runs on loopback). Such a client
# build must not link the server: no axum, no hyper or hyper-util with their
# "server" feature, no sqlx, no kluis-broker.
tree=$(cargo tree -q -p kluis-cli --no-default-features -e normal,features --prefix none)
server=$(grep -E '^(axum|sqlx|sqlx-[a-z]+|kluis-broker) v|^hyper(-util)? feature "server' <<<"$tree" | sort -u || true)
if [ -n "$server" ]; then
  echo "kluis-cli --no-default-features links server code:" >&2
  echo "$server" >&2
  exit 1
fi
# It keeps compiling, and its `kluis start` says why it cannot run a broker
# instead of asking for a password. Then the default binary goes back.
cargo build -q -p kluis-cli --no-default-features
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/kluis"
home=$(mktemp -d)
if KLUIS_HOME="$home" "$bin" start </dev/null 2>"$home/err"; then
  echo "kluis start without the embedded broker did not fail" >&2
  exit 1
fi
grep -q "no embedded broker" "$home/err" || { cat "$home/err" >&2; exit 1; }
rm -rf "$home"
cargo build -q -p kluis-cli

echo "== interop: the independent decryptor written from docs/FORMAT.md"
if python3 -c 'import cryptography.hazmat.primitives.asymmetric.mlkem, cryptography.hazmat.primitives.kdf.argon2' 2>/dev/null; then
  KLUIS_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/kluis" python3 tests/interop/test_interop.py
elif [ "${KLUIS_REQUIRE_INTEROP:-}" = 1 ]; then
  echo "python3 package cryptography>=46 is missing" >&2
  exit 1
else
  echo "SKIPPED: pip install 'cryptography>=46' to run it"
fi

echo "== fuzz targets build"
cargo build --manifest-path fuzz/Cargo.toml --bins
