#!/usr/bin/env bash
# The tray app's CI (called by .ci/run on a fresh Debian machine, as root):
#   1. system packages for Tauri 2 (webkit2gtk 4.1, appindicator), Xvfb,
#      D-Bus, trayer and WebKitWebDriver;
#   2. the UI: npm ci, type check + Vite build, Vitest;
#   3. the app and its .deb, built by the Tauri bundler (npm
#      @tauri-apps/cli, debug profile), and the .deb's contents checked;
#   4. cargo test -p kluis-tray (mock runtime + unit tests);
#   5. the tray over D-Bus (StatusNotifierItem icon + dbusmenu labels in
#      each state) under dbus-run-session + Xvfb, on the binary the .deb holds;
#   6. end-to-end tests of that binary through tauri-driver + WebKitWebDriver.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=never
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

echo "== tray: system packages"
apt-get install -y -qq --no-install-recommends \
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev pkg-config \
  xvfb xauth dbus dbus-x11 imagemagick xdotool jq libglib2.0-bin trayer webkit2gtk-driver \
  file >/dev/null
# Node.js: CI machines ship NodeSource's nodejs (which bundles npm, and which
# Debian's npm package conflicts with); install Debian's only where none is.
if ! command -v npm >/dev/null; then
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

echo "== tray: UI (type check, build, Vitest)"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build && npx vitest run)

echo "== tray: tauri-driver"
if ! command -v tauri-driver >/dev/null; then
  cargo install -q tauri-driver --version '^2' --locked
fi

# The app as it ships: `tauri build` compiles Tauri with its custom-protocol
# feature (assets served from the binary) and bundles the .deb. The D-Bus and
# end-to-end tests below run this very binary, so Tauri is compiled once for
# the app (and once more, with its `test` feature, for cargo test).
echo "== tray: tauri build (.deb)"
cargo build -q -p kluis-cli -p kluis-broker
rm -rf "$target"/debug/bundle/deb
(cd src-tauri && ../ui/node_modules/.bin/tauri build --debug --bundles deb --ci)
deb=$(ls "$target"/debug/bundle/deb/*.deb | head -n1)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||' > /tmp/kluis-deb-contents.txt
for want in usr/bin/kluis-tray usr/share/applications/Kluis.desktop etc/xdg/autostart/Kluis.desktop usr/share/icons/hicolor/128x128/apps/kluis-tray.png; do
  grep -qx "$want" /tmp/kluis-deb-contents.txt || { echo "missing in .deb: $want" >&2; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q libayatana-appindicator3-1 || { echo ".deb lacks its Depends" >&2; exit 1; }
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

echo "== tray: cargo test -p kluis-tray"
cargo test -p kluis-tray

echo "== tray: D-Bus tray states"
bash src-tauri/tests/tray-dbus.sh "$target/debug"

echo "== tray: end-to-end (tauri-driver + WebKitWebDriver)"
bash src-tauri/tests/e2e.sh "$target/debug"

echo "tray: 1 passed, 0 failed"
