#!/usr/bin/env python3
"""Kluis files decrypt with the independent decryptor (kluis_decrypt.py),
which was written from docs/FORMAT.md alone: the frozen vectors, and fresh
files made by the current `kluis` binary (KLUIS_BIN, default
target/debug/kluis) with both KEMs at chunk-edge sizes. And a folder shared
with a group is recovered from its mirror and a member's identity file
alone, with the broker gone (kluis_recover.py, FORMAT.md §8; the broker is
KLUIS_BROKER_BIN, default: kluis-broker next to KLUIS_BIN)."""

import hashlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import kluis_decrypt  # noqa: E402
import kluis_recover  # noqa: E402

FROZEN = HERE.parent / "vectors" / "frozen"
KLUIS = os.environ.get("KLUIS_BIN", str(HERE.parent.parent / "target" / "debug" / "kluis"))
BROKER = os.environ.get("KLUIS_BROKER_BIN", str(pathlib.Path(KLUIS).with_name("kluis-broker")))


def identity(name):
    password = (FROZEN / f"{name}.passphrase").read_bytes().split(b"\n")[0]
    return kluis_decrypt.open_identity((FROZEN / f"{name}.key").read_bytes(), password)


# The error each failing kind of frozen vector must give (FORMAT.md §4.5, §5.3).
EXPECTED_ERRORS = {
    "header-auth": "the header failed to authenticate",
    "no-matching-recipient": "no matching recipient",
    "payload-chunk": r"chunk \d+ failed to authenticate",
}


class FrozenVectors(unittest.TestCase):
    def test_every_frozen_vector(self):
        seen = 0
        for expect in sorted(FROZEN.glob("*.expect")):
            fields = dict(l.split(": ", 1) for l in expect.read_text().splitlines() if ": " in l)
            data = expect.with_suffix(".kluis").read_bytes()
            ident = identity(fields["identity"])
            with self.subTest(vector=expect.stem):
                if fields["expect"] == "ok":
                    plain, name, label = kluis_decrypt.decrypt(data, ident)
                    self.assertEqual(hashlib.sha256(plain).hexdigest(), fields["sha256"])
                    self.assertEqual(name, fields.get("name"))
                    self.assertEqual(label, fields.get("label"))
                else:
                    with self.assertRaisesRegex(kluis_decrypt.KluisError, EXPECTED_ERRORS.get(fields["expect"], "")):
                        kluis_decrypt.decrypt(data, ident)
            seen += 1
        self.assertGreaterEqual(seen, 6)

    def test_wrong_password(self):
        with self.assertRaisesRegex(kluis_decrypt.KluisError, "wrong password"):
            kluis_decrypt.open_identity((FROZEN / "alice.key").read_bytes(), b"nope")

    def test_batch_xwing_files_share_one_encapsulation(self):
        """§4.8: batch-xwing-a and -b are one batch: for each recipient the
        same X-Wing `enc`, but their own file id and file key."""
        a, b = (kluis_decrypt.parse_header((FROZEN / f"batch-xwing-{x}.kluis").read_bytes()) for x in "ab")
        self.assertNotEqual(a.file_id, b.file_id)
        for who in ("alice", "bob"):
            with self.subTest(recipient=who):
                ident = identity(who)
                sa, sb = ([s for s in h.stanzas if s.kem == kluis_decrypt.XWING_BATCH and s.key_id == ident.key_id]
                          for h in (a, b))
                self.assertEqual((len(sa), len(sb)), (1, 1))
                self.assertEqual(sa[0].body[:1120], sb[0].body[:1120])
                self.assertNotEqual(kluis_decrypt.find_file_key(a, ident), kluis_decrypt.find_file_key(b, ident))


# CI (KLUIS_REQUIRE_INTEROP=1) must not skip it.
@unittest.skipUnless(
    os.path.exists(KLUIS) or os.environ.get("KLUIS_REQUIRE_INTEROP") == "1", f"{KLUIS} not built"
)
class FreshFiles(unittest.TestCase):
    def test_current_kluis_output(self):
        with tempfile.TemporaryDirectory() as d:
            d = pathlib.Path(d)
            env = dict(os.environ, KLUIS_HOME=str(d / "home"), KLUIS_PASSPHRASE="interop passphrase")
            env.pop("KLUIS_PASSPHRASE_FILE", None)
            recipient = subprocess.run([KLUIS, "keygen"], env=env, check=True, capture_output=True).stdout.decode().strip()
            ident = kluis_decrypt.open_identity((d / "home" / "identity.kluiskey").read_bytes(), b"interop passphrase")
            for size in (0, 1, 16383, 16384, 16385, 5 * 1024 * 1024 + 3):
                for extra in ([], ["--classical"]):
                    with self.subTest(size=size, classical=bool(extra)):
                        plain = os.urandom(size)
                        (d / "in.bin").write_bytes(plain)
                        subprocess.run([KLUIS, "encrypt", "-r", recipient, *extra, "-o", str(d / "out.kluis"), str(d / "in.bin")],
                                       env=env, check=True)
                        got, name, _ = kluis_decrypt.decrypt((d / "out.kluis").read_bytes(), ident)
                        self.assertEqual(got, plain)
                        self.assertEqual(name, "in.bin")
            # §4.7: the header is padded (one X-Wing stanza, then the padding
            # stanza at byte 1218), and a non-zero padding byte is refused.
            subprocess.run([KLUIS, "encrypt", "-r", recipient, "-o", str(d / "out.kluis"), str(d / "in.bin")], env=env, check=True)
            data = bytearray((d / "out.kluis").read_bytes())
            self.assertEqual(data[1218:1220], b"\x00\x00")
            data[1300] ^= 1
            with self.assertRaisesRegex(kluis_decrypt.KluisError, "padding"):
                kluis_decrypt.decrypt(bytes(data), ident)

            # §4.7, §6: `recipients add` keeps the padded header length (the
            # new stanza is written in place) and the file's KEM; both
            # recipients' files open here.
            env2 = dict(env, KLUIS_HOME=str(d / "home2"))
            second = subprocess.run([KLUIS, "keygen"], env=env2, check=True, capture_output=True).stdout.decode().strip()
            ident2 = kluis_decrypt.open_identity((d / "home2" / "identity.kluiskey").read_bytes(), b"interop passphrase")
            plain = os.urandom(40000)
            (d / "in.bin").write_bytes(plain)
            for extra, kem, length in (([], kluis_decrypt.XWING, 4096), (["--classical"], 0x0020, 768)):
                with self.subTest(reshare=extra):
                    out = d / "shared.kluis"
                    subprocess.run([KLUIS, "encrypt", "-r", recipient, *extra, "-o", str(out), str(d / "in.bin")], env=env, check=True)
                    size = out.stat().st_size
                    subprocess.run([KLUIS, "recipients", "add", "-r", second, str(out)], env=env, check=True, capture_output=True)
                    header = kluis_decrypt.parse_header(out.read_bytes())
                    self.assertEqual([s.kem for s in header.stanzas if s.kem != 0], [kem, kem])
                    self.assertEqual(header.length, length)
                    if not extra:
                        self.assertEqual(out.stat().st_size, size)
                    for who in (ident, ident2):
                        self.assertEqual(kluis_decrypt.decrypt(out.read_bytes(), who)[0], plain)


class GroupKeyFileVector(unittest.TestCase):
    def test_frozen_group_key_file(self):
        """§8.7: the frozen group key file opens for Bob; each version's
        secret gives the key id its .expect lists."""
        fields = dict(l.split(": ", 1) for l in (FROZEN / "group-keys.expect").read_text().splitlines())
        plain, name, _ = kluis_decrypt.decrypt((FROZEN / "group-keys.kluis").read_bytes(), identity("bob"))
        self.assertEqual(name, ".kluis-group")
        entries = kluis_recover.parse_group_key_file(plain)
        self.assertEqual(" ".join(str(v) for v, _ in entries), fields["group-versions"])
        self.assertEqual(" ".join(k.key_id.hex() for _, k in entries), fields["group-key-ids"])
        for bad in (plain[:-1], plain + b"\0", b"KLSGRPK2" + plain[8:],
                    plain[:10] + plain[78:82] + plain[14:78] + plain[10:14] + plain[82:]):
            with self.assertRaises(kluis_decrypt.KluisError):
                kluis_recover.parse_group_key_file(bad)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kluis_files(mirror):
    return sorted(p for p in mirror.rglob("*.kls") if not any(part.startswith(".kluis-") for part in p.parts))


# CI (KLUIS_REQUIRE_INTEROP=1) must not skip it.
@unittest.skipUnless(
    (os.path.exists(KLUIS) and os.path.exists(BROKER)) or os.environ.get("KLUIS_REQUIRE_INTEROP") == "1",
    f"{KLUIS} or {BROKER} not built",
)
class GroupSharedFolderWithoutBroker(unittest.TestCase):
    """Issue #17 point 8: a folder shared with a group, made by the real
    binaries against a real broker, is recovered by a group member from the
    mirror and their identity file after the broker and its data are gone,
    also after a key rotation; the member who left the group cannot."""

    PASS = "interop group passphrase"

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.bdir = self.dir / "broker"
        self.benv = dict(os.environ, KLUIS_HOME=str(self.dir / "broker-home"), KLUIS_BROKER_REGISTRATION="open")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.broker = subprocess.Popen([BROKER, "--data-dir", str(self.bdir), "serve", "--listen", f"127.0.0.1:{port}"],
                                       env=self.benv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_broker)
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                self.assertIsNone(self.broker.poll(), "the broker exited")
                self.assertLess(time.time(), deadline, "the broker did not start")
                time.sleep(0.1)
        self.org_key = self.dir / "org.key"
        self.org_pub = self.admin("org", "init", "--out", str(self.org_key)).strip()

    def stop_broker(self):
        if self.broker.poll() is None:
            self.broker.terminate()
            self.broker.wait(30)

    def admin(self, *args):
        return subprocess.run([BROKER, "--data-dir", str(self.bdir), "admin", *args], env=self.benv,
                              check=True, capture_output=True, text=True).stdout

    def env(self, user):
        e = dict(os.environ, KLUIS_HOME=str(self.dir / user / "home"), KLUIS_PASSPHRASE=self.PASS, KLUIS_NO_KEYRING="1")
        e.pop("KLUIS_PASSPHRASE_FILE", None)
        return e

    def kluis(self, user, *args):
        r = subprocess.run([KLUIS, *args], env=self.env(user), capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"kluis {' '.join(args)}:\n{r.stdout}\n{r.stderr}")
        return r

    def run_agent_until(self, user, done):
        """`kluis agent` until done() holds (it syncs, and with the account
        it refreshes from the directory at unlock); then stop it."""
        agent = subprocess.Popen([KLUIS, "agent", "--quiet-ms", "50"], env=self.env(user),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while not done():
                self.assertIsNone(agent.poll(), "the agent exited")
                self.assertLess(time.time(), deadline, "the agent did not get there")
                time.sleep(0.2)
            time.sleep(0.5)
        finally:
            agent.terminate()
            agent.wait(30)

    def test_a_member_recovers_the_folder_with_the_broker_gone(self):
        for who in ("alice", "carol", "dave"):
            self.kluis(who, "account", "register", "--broker", self.url, "--org-key", self.org_pub,
                       "--email", f"{who}@example.org", "--name", who.title())
            self.admin("certify", "--org-key", str(self.org_key), "--email", f"{who}@example.org")
        self.kluis("alice", "groups", "create", "finance")
        self.admin("certify-group", "--org-key", str(self.org_key), "--name", "finance")
        for who in ("carol", "dave"):
            self.kluis("alice", "groups", "add", "finance", f"{who}@example.org")

        # Alice's folder, synced once by her agent, then shared with the group.
        plain, mirror = self.dir / "alice" / "Kluis" / "Budget", self.dir / "alice" / "Dropbox" / "Budget"
        files = {
            "begroting.txt": b"vertrouwelijk",
            "kwartaal/q1.csv": os.urandom(20000),
            "n" * 100 + ".txt": b"a hashed long name (FORMAT.md 8.4)",
        }
        for rel, data in files.items():
            (plain / rel).parent.mkdir(parents=True, exist_ok=True)
            (plain / rel).write_bytes(data)
        self.kluis("alice", "folders", "add", str(plain), str(mirror))
        self.run_agent_until("alice", lambda: (mirror / ".kluis-folder").is_file() and len(kluis_files(mirror)) == 3)
        self.kluis("alice", "share", str(plain), "--with", "group:finance")
        group_files = sorted((mirror / ".kluis-groups").iterdir())
        self.assertEqual(len(group_files), 1, "one group key file (FORMAT.md 8.7)")
        self.assertRegex(group_files[0].name, r"^[0-9a-f]{32}$")

        # Dave leaves the group: the key rotates; Alice's next file.
        self.kluis("alice", "groups", "remove", "finance", "dave@example.org")
        self.admin("certify-group", "--org-key", str(self.org_key), "--name", "finance")
        files["na-rotatie.txt"] = b"written after the rotation"
        (plain / "na-rotatie.txt").write_bytes(files["na-rotatie.txt"])
        self.run_agent_until("alice", lambda: len(kluis_files(mirror)) == 4)

        # Nothing of the names is in the mirror.
        for p in mirror.rglob("*"):
            for word in ("begroting", "kwartaal", "rotatie", "finance", "nnnn"):
                self.assertNotIn(word, p.name)

        # The broker and all its data are gone.
        self.stop_broker()
        shutil.rmtree(self.bdir)

        # Carol has her identity file (her password) and the mirror.
        carol = kluis_decrypt.open_identity((self.dir / "carol" / "home" / "identity.kluiskey").read_bytes(),
                                            self.PASS.encode())
        self.assertEqual(len(kluis_recover.group_keys(mirror, carol)), 2, "both key versions")
        out = self.dir / "recovered"
        written, failed = kluis_recover.recover(str(mirror), carol, str(out))
        self.assertEqual(failed, [])
        self.assertEqual(sorted(written), sorted(files))
        for rel, data in files.items():
            self.assertEqual((out / rel).read_bytes(), data, rel)
        # The command-line tool says the same.
        r = subprocess.run([sys.executable, str(HERE / "kluis_recover.py"),
                            str(self.dir / "carol" / "home" / "identity.kluiskey"), "/dev/stdin",
                            str(mirror), str(self.dir / "recovered-cli")],
                           input=self.PASS.encode() + b"\n", capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((self.dir / "recovered-cli" / "na-rotatie.txt").read_bytes(), files["na-rotatie.txt"])

        # Dave, who left, gets no key from the mirror's group key file.
        dave = kluis_decrypt.open_identity((self.dir / "dave" / "home" / "identity.kluiskey").read_bytes(),
                                           self.PASS.encode())
        self.assertEqual(kluis_recover.group_keys(mirror, dave), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
