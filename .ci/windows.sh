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

echo "== kluis.exe: the agent and the CLI as separate Windows processes"
cargo build -q --target "$target" -p kluis-cli
bin=$(dirname "$exe")/..
cp "$(dirname "$exe")/bcryptprimitives.dll" "$bin/"
drive=$WINEPREFIX/drive_c
mkdir -p "$drive/plain" "$drive/sync"
export KLUIS_HOME='C:\kluis-home' KLUIS_PASSPHRASE='wine passphrase'
kluis() { /usr/lib/wine/wine64 "$bin/kluis.exe" "$@"; }
kluis keygen >/dev/null
kluis folders add 'C:\plain' 'C:\sync\Kluis'
kluis agent > "$drive/agent.log" 2>&1 &
# wait_for CMD...: until CMD succeeds, for up to two minutes.
wait_for() {
  for _ in $(seq 240); do "$@" && return 0; sleep 0.5; done
  echo "timed out: $*" >&2; cat "$drive/agent.log" >&2; return 1
}
wait_for test -s "$drive/kluis-home/agent.pipe"
echo "a note from Windows" > "$drive/plain/note.txt"
synced() { kluis status --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(s["pairs"][0]["synced_files"] != 1 or s["pairs"][0]["state"] != "idle")'; }
wait_for synced
kluis status
kluis lock
kluis status --json | python3 -c 'import json,sys; assert json.load(sys.stdin)["locked"]'
kluis unlock
kluis pause
kluis resume
# Decrypting without -i asks the agent, over the pipe, for the file key.
cp "$(find "$drive/sync/Kluis" -name '*.kls' | head -n1)" "$drive/note.kls"
kluis decrypt -o 'C:\note.txt' 'C:\note.kls'
grep -q "a note from Windows" "$drive/note.txt"
/usr/lib/wine/wineserver -k
echo "Windows endpoint: OK"
