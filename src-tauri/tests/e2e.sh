#!/usr/bin/env bash
# End-to-end tests of the real app through tauri-driver + WebKitWebDriver,
# under Xvfb and a private D-Bus session, once per language (en, nl, fr),
# each in a fresh KLUIS_HOME with its own invite-only kluis-broker on
# loopback (the wizard registers from an invite an administrator made).
# Usage: e2e.sh TARGET_DEBUG_DIR [SHOTS_DIR]
set -euo pipefail
bin_dir=$(cd "$1" && pwd)
shots=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
ui="$here/../../ui"
if [ -z "${KLUIS_E2E_INNER:-}" ]; then
  export KLUIS_E2E_INNER=1
  exec dbus-run-session -- xvfb-run -a -s "-ac -screen 0 1280x800x24" bash "$0" "$@"
fi
command -v tauri-driver >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
status=0
for lang in en nl fr; do
  run=$(mktemp -d)
  mkdir -p "$run/Dropbox"
  case $lang in en) loc=en_US.UTF-8 ;; nl) loc=nl_BE.UTF-8 ;; fr) loc=fr_BE.UTF-8 ;; esac
  port=$((4444 + RANDOM % 1000))
  bport=$((port + 2000))
  broker_bin="$bin_dir/kluis-broker"
  org=$("$broker_bin" admin org init --out "$run/org.key" 2>/dev/null | grep -o 'kluis-org-ed25519:[A-Za-z0-9_-]*' | head -n1)
  invite=$("$broker_bin" --data-dir "$run/broker" admin invite create --email e2e@example.org --ttl-hours 1 \
    --broker-url "http://127.0.0.1:$bport" --org-public-key "$org")
  env -u KLUIS_HOME "$broker_bin" --data-dir "$run/broker" serve --listen "127.0.0.1:$bport" 2>"$run/broker.log" &
  broker=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$bport) 2>/dev/null && break; sleep 0.1; done
  # A colleague to share with: registered with the kluis CLI from their own
  # invite on their own "device", and certified by the administrator.
  bob_invite=$("$broker_bin" --data-dir "$run/broker" admin invite create --email bob@example.org --ttl-hours 1 \
    --broker-url "http://127.0.0.1:$bport" --org-public-key "$org")
  mkdir -p "$run/bob"
  echo "bob's long and careful passphrase" >"$run/bob.pass"
  KLUIS_HOME="$run/bob" KLUIS_NO_KEYRING=1 "$bin_dir/kluis" --passphrase-file "$run/bob.pass" \
    account register --invite "$bob_invite" --email bob@example.org --name "Bob Janssens" >"$run/bob.log" 2>&1
  "$broker_bin" --data-dir "$run/broker" admin certify --org-key "$run/org.key" --email bob@example.org >>"$run/bob.log" 2>&1
  (
    export KLUIS_HOME="$run" HOME="$run" LANG="$loc" LC_ALL="" LC_MESSAGES="" LANGUAGE="" KLUIS_QUIET_MS=300 KLUIS_NO_KEYRING=1 XDG_CONFIG_HOME="$run/.config"
    exec tauri-driver --port "$port" --native-port $((port + 1000)) >"$run/driver.log" 2>&1
  ) &
  driver=$!
  for _ in $(seq 1 50); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  echo "-- e2e ($lang)"
  if ! KLUIS_HOME="$run" KLUIS_TRAY_BIN="$bin_dir/kluis-tray" TAURI_DRIVER_URL="http://127.0.0.1:$port" \
    KLUIS_E2E_LANG=$lang KLUIS_SHOTS="$shots" KLUIS_E2E_INVITE="$invite" \
    KLUIS_E2E_BROKER_BIN="$broker_bin" KLUIS_E2E_BROKER_DIR="$run/broker" KLUIS_E2E_ORG_KEY_FILE="$run/org.key" \
    KLUIS_E2E_KLUIS_BIN="$bin_dir/kluis" KLUIS_E2E_BOB_HOME="$run/bob" KLUIS_E2E_BOB_PASS="$run/bob.pass" \
    node --test "$ui/e2e/app.e2e.mjs"; then
    status=1
    cat "$run/driver.log" "$run/broker.log" >&2 || true
  fi
  kill "$broker" 2>/dev/null || true
  wait "$broker" 2>/dev/null || true
  kill "$driver" 2>/dev/null || true
  wait "$driver" 2>/dev/null || true
  rm -rf "$run"
done
exit $status
