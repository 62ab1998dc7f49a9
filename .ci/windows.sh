#!/usr/bin/env bash
# The agent's Windows control endpoint (a named pipe), tested on Windows
# code paths for real: kluis-agent's endpoint test is cross-compiled for
# x86_64-pc-windows-gnu with MinGW-w64 and run under Wine (Debian packages).
# The same test runs natively on Linux in the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-pc-windows-gnu
apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64 wine64 >/dev/null
# The Windows standard library comes from the Rust toolchain's own
# distribution, like the host's.
rustup target add "$target"
exe=$(cargo test --no-run -q --target "$target" -p kluis-agent --test endpoint \
  --message-format=json-render-diagnostics \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])' | tail -n1)
test -n "$exe"
# Wine 8 lacks ProcessPrng, which Rust's std needs: a test-only shim next
# to the binary (see the file's header).
x86_64-w64-mingw32-gcc -shared -O2 -o "$(dirname "$exe")/bcryptprimitives.dll" \
  tests/windows/bcryptprimitives.c
export WINEDEBUG=-all WINEPREFIX
WINEPREFIX=$(mktemp -d)
trap '/usr/lib/wine/wineserver -k 2>/dev/null || true; rm -rf "$WINEPREFIX"' EXIT
# Wine passes on the test binary's exit code.
/usr/lib/wine/wine64 "$exe"
/usr/lib/wine/wineserver -w
