"""Tray state test: see tray-dbus.sh. Prints 'N passed, 0 failed' at the end."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.argv[1]).resolve()
SHOTS = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 and sys.argv[2] else None
HERE = Path(__file__).resolve().parent
ICONS = HERE.parent / "icons" / "tray"
EN = json.loads((HERE.parent.parent / "ui/src/i18n/en.json").read_text())
PASS = "tray test passphrase"
CONVERT = "/usr/bin/convert"

run = Path(tempfile.mkdtemp(prefix="kluis-tray-"))
env = dict(os.environ, KLUIS_HOME=str(run / "a"), HOME=str(run), KLUIS_PASSPHRASE=PASS, LANG="C.UTF-8", KLUIS_NO_KEYRING="1",
           LC_ALL="", LC_MESSAGES="", LANGUAGE="", XDG_CONFIG_HOME=str(run / ".config"))
procs = []
passed = 0


def sh(*args, e=None, check=True):
    r = subprocess.run([str(a) for a in args], env=dict(e or env, LC_ALL="C.UTF-8"), capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError(f"{args}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def kluis(*args, e=None):
    return sh(BIN / "kluis", *args, e=e)


def gdbus(dest, path, method, *args):
    return sh("gdbus", "call", "--session", "--dest", dest, "--object-path", path, "--method", method, "--", *args)


def prop(dest, path, iface, name):
    return gdbus(dest, path, "org.freedesktop.DBus.Properties.Get", iface, name)


def find_item():
    """The app's StatusNotifierItem: (bus name, object path)."""
    names = re.findall(r"'(:[0-9.]+)'", gdbus("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.ListNames"))
    for n in names:
        for root in ["/org/ayatana/NotificationItem", "/StatusNotifierItem"]:
            try:
                xml = gdbus(n, root, "org.freedesktop.DBus.Introspectable.Introspect")
            except Exception:
                continue
            if "org.kde.StatusNotifierItem" in xml:
                return n, root
            for child in re.findall(r'<node name=\\?"([^"\\]+)\\?"', xml):
                p = f"{root}/{child}"
                try:
                    if "org.kde.StatusNotifierItem" in gdbus(n, p, "org.freedesktop.DBus.Introspectable.Introspect"):
                        return n, p
                except Exception:
                    pass
    return None


STATES = ["locked", "up_to_date", "syncing", "paused", "attention"]


def distance(a, b):
    """Normalised RMSE between two images (tray-icon re-encodes the PNG)."""
    r = subprocess.run(["compare", "-metric", "RMSE", str(a), str(b), "null:"], capture_output=True, text=True)
    m = re.search(r"\(([0-9.e-]+)\)", r.stderr)
    return float(m.group(1)) if m else 1.0


def which_icon(png):
    """The state icon `png` shows: the nearest reference, if it is near."""
    d = sorted((distance(png, ICONS / f"{k}.png"), k) for k in STATES)
    return d[0][1] if d[0][0] < 0.02 and d[1][0] > 0.05 else None


def read_tray(item):
    dest, path = item
    icon_name = re.search(r"<'([^']*)'>", prop(dest, path, "org.kde.StatusNotifierItem", "IconName")).group(1)
    status = re.search(r"<'([^']*)'>", prop(dest, path, "org.kde.StatusNotifierItem", "Status")).group(1)
    theme = re.search(r"<'([^']*)'>", prop(dest, path, "org.kde.StatusNotifierItem", "IconThemePath"))
    menu = re.search(r"objectpath '([^']+)'", prop(dest, path, "org.kde.StatusNotifierItem", "Menu")).group(1)
    layout = gdbus(dest, menu, "com.canonical.dbusmenu.GetLayout", "0", "-1", "[]")
    labels = re.findall(r"'label': <'((?:[^'\\]|\\.)*)'>", layout)
    # The icon file the item names, and which of our state icons it shows.
    f = Path(icon_name)
    if not f.is_absolute() and theme:
        f = Path(theme.group(1)) / icon_name
    if f.suffix != ".png":
        f = f.with_name(f.name + ".png")
    return {"icon": icon_name, "shows": which_icon(f) if f.exists() else None, "status": status, "labels": labels}


# Each count of the status line in words, by its plural key (English: one
# for 1, other otherwise), as src-tauri/src/tray.rs writes it.
COUNT_KEYS = {
    "pending": "tray.count.pending",
    "conflicts": "status.conflict_count",
    "errors": "tray.count.errors",
}


def status_line(kind, **counts):
    s = EN[f"tray.status.{kind}"]
    for k, v in counts.items():
        form = "one" if v == 1 else "other"
        words = EN[f"{COUNT_KEYS[k]}.{form}"].replace("{n}", str(v))
        s = s.replace("{" + k + "}", words)
    return s


def expect(item, kind, line, what):
    """Wait (at most 10 s: the app polls every 250 ms) for the tray to show `kind`."""
    global passed
    end = time.time() + 10
    t0 = time.time()
    while True:
        t = read_tray(item)
        if t["shows"] == kind and t["labels"] and t["labels"][0] == line:
            break
        if time.time() > end:
            raise AssertionError(f"{what}: wanted {kind} / {line!r}, tray shows {t}")
        time.sleep(0.1)
    assert t["status"] in ("Active", "Passive", "NeedsAttention"), t
    wanted = {EN["tray.menu.open_kluis"], EN["tray.menu.open_sync"], EN["tray.menu.share"], EN["tray.menu.settings"], EN["tray.menu.quit"]}
    assert wanted <= set(t["labels"]), t["labels"]
    assert (EN["tray.menu.unlock"] if kind == "locked" else EN["tray.menu.lock"]) in t["labels"], t["labels"]
    assert (EN["tray.menu.resume"] if kind == "paused" else EN["tray.menu.pause"]) in t["labels"], t["labels"]
    passed += 1
    print(f"ok - {what}: icon {t['icon']} shows {kind}, status {t['status']}, menu {t['labels'][0]!r} ({time.time() - t0:.1f} s)")
    if SHOTS:
        shot(kind)
    return t


def shot(kind):
    """Screenshot of the trayer panel (XEmbed fallback of the same icon)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    time.sleep(0.4)
    raw = run / "root.png"
    sh("import", "-window", "root", raw)
    sh(CONVERT, raw, "-crop", "96x40+1184+0", "+repage", "-scale", "200%", SHOTS / f"tray-{kind}.png")


def wait_file(p, timeout=30):
    end = time.time() + timeout
    while not p():
        if time.time() > end:
            raise AssertionError("timed out")
        time.sleep(0.1)


try:
    a = run / "a"
    plain, mirror = run / "Kluis", run / "Dropbox" / "Kluis"
    kluis("keygen")
    kluis("folders", "add", plain, mirror)
    if SHOTS:
        procs.append(subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "96",
                                       "--heighttype", "pixel", "--height", "40", "--tint", "0xeeeeee", "--transparent", "true",
                                       "--alpha", "0", "--SetDockType", "true", "--expand", "false"], env=env))
        time.sleep(1)
    app_env = dict(env, KLUIS_QUIET_MS="3000", KLUIS_TRAY_ICON_DIR=str(run / "icons"))
    app_env.pop("KLUIS_PASSPHRASE")
    log = open(run / "app.log", "w")
    app = subprocess.Popen([str(BIN / "kluis-tray")], env=app_env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(app)
    end = time.time() + 60
    item = None
    while item is None:
        assert app.poll() is None, (run / "app.log").read_text()
        assert time.time() < end, "no StatusNotifierItem appeared"
        item = find_item()
        time.sleep(0.2)
    print(f"# StatusNotifierItem {item}")

    expect(item, "locked", status_line("locked"), "starts locked")
    kluis("unlock")
    expect(item, "up_to_date", status_line("up_to_date"), "unlock")
    kluis("pause")
    expect(item, "paused", status_line("paused", pending=0), "pause")
    kluis("resume")
    expect(item, "up_to_date", status_line("up_to_date"), "resume")
    (plain / "report.txt").write_text("version 1\n")
    expect(item, "syncing", status_line("syncing", pending=1), "a dropped file waits for its quiet period")
    expect(item, "up_to_date", status_line("up_to_date"), "the file is encrypted")

    # A real conflict: device B (same identity, its own folder, the same
    # mirror as Dropbox would make it) edits report.txt while this device,
    # paused, edits it too.
    kluis("pause")
    expect(item, "paused", status_line("paused", pending=0), "pause before the conflict")
    (plain / "report.txt").write_text("version 2 from this device\n")
    b_env = dict(env, KLUIS_HOME=str(run / "b"), KLUIS_DEVICE="deviceB")
    (run / "b").mkdir()
    shutil.copy(a / "identity.kluiskey", run / "b" / "identity.kluiskey")
    kluis("folders", "add", run / "KluisB", mirror, e=b_env)
    b = subprocess.Popen([str(BIN / "kluis"), "agent", "--quiet-ms", "100"], env=b_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(b)
    wait_file(lambda: (run / "KluisB" / "report.txt").exists())
    (run / "KluisB" / "report.txt").write_text("version 2 from device B\n")
    wait_file(lambda: "encrypted" in kluis("activity", e=b_env) and kluis("activity", e=b_env).count("report.txt") >= 2)
    b.terminate()
    b.wait(10)
    kluis("resume")
    expect(item, "attention", status_line("attention", conflicts=1, errors=0), "a conflict copy needs attention")
    kluis("lock")
    expect(item, "locked", status_line("locked"), "lock")
    print(f"{passed} passed, 0 failed")
except Exception:
    log = run / "app.log"
    if log.exists():
        print(log.read_text(), file=sys.stderr)
    raise
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(10)
        except Exception:
            p.kill()
    shutil.rmtree(run, ignore_errors=True)
