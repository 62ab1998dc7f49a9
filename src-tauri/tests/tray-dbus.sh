#!/usr/bin/env bash
# The tray, read the way a desktop reads it: the app's StatusNotifierItem
# over D-Bus (IconName + the icon file it names, Status, and the dbusmenu
# labels), under a private D-Bus session and Xvfb, while the engine is driven
# into each state by real actions (`kluis unlock/pause/resume/lock` over the
# app's control socket, a dropped file, a real conflict from a second
# device). Usage: tray-dbus.sh TARGET_DEBUG_DIR [SHOTS_DIR]
set -euo pipefail
if [ -z "${KLUIS_TRAY_INNER:-}" ]; then
  export KLUIS_TRAY_INNER=1
  exec dbus-run-session -- xvfb-run -a -s "-ac -screen 0 1280x800x24" bash "$0" "$@"
fi
exec python3 "$(dirname "$0")/tray_dbus.py" "$@"
