#!/usr/bin/env python3
"""Kluis files decrypt with the independent decryptor (kluis_decrypt.py),
which was written from docs/FORMAT.md alone: the frozen vectors, and fresh
files made by the current `kluis` binary (KLUIS_BIN, default
target/debug/kluis) with both KEMs at chunk-edge sizes. And a folder shared
with a group is recovered from its mirror and a member's identity file
alone, with the broker gone (kluis_recover.py, FORMAT.md §8; the broker is
KLUIS_BROKER_BIN, default: kluis-broker next to KLUIS_BIN). And a mirror
holding Kluis conflict copies (direct and hashed names) and sync clients'
copies is recovered with every file under the name FORMAT.md §8.4-8.6 give
it, the names the agent itself gives."""

import calendar
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


def plain_tree(root):
    """Every file under root, Kluis's own (.kluis-trash, ...) left out."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".kluis")]
        for f in filenames:
            if not f.startswith(".kluis"):
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


# CI (KLUIS_REQUIRE_INTEROP=1) must not skip it.
@unittest.skipUnless(
    os.path.exists(KLUIS) or os.environ.get("KLUIS_REQUIRE_INTEROP") == "1", f"{KLUIS} not built"
)
class ConflictAndSyncClientCopies(unittest.TestCase):
    """Issue #17 "done means": a mirror made by the real agent, holding the
    Kluis conflict copies it made of sync clients' conflicted copies: one
    whose conflict name is 80+ bytes, so hashed (FORMAT.md §8.4: the header
    must hold that name), one direct whose header still names the original
    (§8.5 step 3: the entry's name wins); and sync clients' copies that no
    agent has settled yet (" (1)", "-LAPTOP", a hashed stem's). The
    independent tool recovers every version under the name §8.5/§8.6 give
    it -- the name the agent then gives it too -- and refuses a hashed
    conflict copy whose header names the original (what the agent wrote
    before 012b159), rather than decrypt it over the original."""

    PASS = "interop copies passphrase"
    # The old versions' mtime: 2026-12-07 12:25:54.75 UTC; a conflict name
    # carries its whole seconds (§8.5 step 3, §8.6).
    T1 = calendar.timegm((2026, 12, 7, 12, 25, 54)) * 10**9 + 750_000_000
    DATE = "2026-12-07 122554"

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.env = dict(os.environ, KLUIS_HOME=str(self.dir / "home"), KLUIS_PASSPHRASE=self.PASS, KLUIS_NO_KEYRING="1")
        self.env.pop("KLUIS_PASSPHRASE_FILE", None)
        self.plain, self.mirror = self.dir / "Kluis" / "Bestuur", self.dir / "Dropbox" / "Bestuur"
        self.plain.mkdir(parents=True)
        self.agent = None
        self.addCleanup(self.stop_agent)
        for args in (["keygen"], ["folders", "add", str(self.plain), str(self.mirror)]):
            r = subprocess.run([KLUIS, *args], env=self.env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"kluis {' '.join(args)}:\n{r.stdout}\n{r.stderr}")
        self.ident = kluis_decrypt.open_identity((self.dir / "home" / "identity.kluiskey").read_bytes(),
                                                 self.PASS.encode())

    def start_agent(self):
        self.agent = subprocess.Popen([KLUIS, "agent", "--quiet-ms", "50"], env=self.env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_agent(self):
        if self.agent is not None and self.agent.poll() is None:
            time.sleep(0.5)
            self.agent.terminate()
            self.agent.wait(30)
        self.agent = None

    def wait(self, done, what):
        deadline = time.time() + 120
        while not done():
            self.assertIsNone(self.agent.poll(), "the agent exited")
            self.assertLess(time.time(), deadline, f"the agent did not get there: {what}")
            time.sleep(0.2)

    def put(self, rel, data, mtime_ns=None):
        p = self.plain / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if mtime_ns is not None:
            os.utime(p, ns=(mtime_ns, mtime_ns))

    def cpath(self, rel):
        """The mirror path of a plaintext file (§8.3, §8.4), by the tool."""
        parts = rel.split("/")
        return self.mirror.joinpath(*(self.names.encrypt_name(c) for c in parts[:-1]),
                                    self.names.encrypt_name(parts[-1]) + ".kls")

    def header(self, path):
        """(plaintext, header metadata name) of a ciphertext, or None."""
        try:
            return kluis_decrypt.decrypt(path.read_bytes(), self.ident)[:2]
        except (OSError, kluis_decrypt.KluisError):
            return None

    def holds(self, versions):
        return all((self.header(self.cpath(rel)) or (None,))[0] == data for rel, data in versions.items())

    def copy_in(self, rel_of, suffix, data):
        """What a sync client does: its copy of rel_of's ciphertext, named
        `<encrypted stem><suffix>.kls`, appears at once (a rename)."""
        c = self.cpath(rel_of)
        tmp = self.dir / "incoming"
        tmp.write_bytes(data)
        dst = c.with_name(c.name[:-4] + suffix + ".kls")
        os.rename(tmp, dst)
        return dst

    def test_conflict_copies_and_sync_client_copies_are_recovered_by_name(self):
        short = "notulen.txt"
        long = "jaarverslag " + "k" * 44 + ".txt"  # 60 bytes: direct; its conflict names are not
        huge = "archief/" + "h" * 96 + ".txt"  # 100 bytes: hashed itself
        self.assertEqual((len(long), len(huge.split("/")[1])), (60, 100))
        short_c = f"notulen (conflict sync {self.DATE}).txt"
        short_c2 = f"notulen (conflict sync 2 {self.DATE}).txt"
        long_c = f"jaarverslag {'k' * 44} (conflict sync {self.DATE}).txt"
        huge_c = f"archief/{'h' * 96} (conflict sync {self.DATE}).txt"
        v1 = {short: b"notulen, eerste versie", long: b"jaarverslag v1", huge: b"archief v1"}
        v1b = {short: b"notulen, eerste versie met een correctie"}
        v2 = {short: b"notulen v2", long: b"jaarverslag v2, de laatste", huge: b"archief v2"}

        # Three versions of each, made and encrypted by the agent; the old
        # ones at time T1. The old ciphertexts are kept, as a sync client
        # keeps them.
        for rel, data in v1.items():
            self.put(rel, data, self.T1)
        self.start_agent()
        self.wait(lambda: (self.mirror / ".kluis-folder").is_file(), "the folder metadata")
        self.names = kluis_recover.open_folder(str(self.mirror), [self.ident])
        self.wait(lambda: self.holds(v1), "v1")
        old = {rel: self.cpath(rel).read_bytes() for rel in v1}
        self.put(short, v1b[short], self.T1)
        self.wait(lambda: self.holds(v1b), "v1b")
        old_b = self.cpath(short).read_bytes()
        for rel, data in v2.items():
            self.put(rel, data)
        self.wait(lambda: self.holds(v2), "v2")
        long_now = self.cpath(long).read_bytes()

        # A Dropbox-style conflicted copy of two files (another device's
        # upload lost to this one): the agent makes them Kluis conflict
        # copies, in the plaintext folder and in the mirror.
        dropbox = " (dev-b's conflicted copy 2026-12-07)"
        adopted = [self.copy_in(short, dropbox, old[short]), self.copy_in(long, dropbox, old[long])]
        want = {**v2, short_c: v1[short], long_c: v1[long]}
        self.wait(lambda: not any(p.exists() for p in adopted) and plain_tree(self.plain) == want,
                  "the conflicted copies adopted")
        self.stop_agent()
        # The direct one: the ciphertext was renamed as it is, so its header
        # still names the original (the entry wins, §8.5 step 3)...
        self.assertEqual(self.header(self.cpath(short_c)), (v1[short], short))
        self.assertFalse(kluis_recover.is_hashed(self.names.encrypt_name(short_c)))
        # ...the hashed one holds its own name (§8.4).
        self.assertTrue(kluis_recover.is_hashed(self.names.encrypt_name(long_c)))
        self.assertEqual(self.header(self.cpath(long_c)), (v1[long], long_c))

        # More copies arrive while no agent runs: " (1)" of another old
        # version (its conflict name is taken by other content: `sync 2`),
        # "-LAPTOP" of a version kept already, a copy of a hashed name
        # (settled through its header's name, §8.5), "-LAPTOP-2" of the
        # current version.
        pending = {
            self.copy_in(short, " (1)", old_b): "new",
            self.copy_in(short, "-LAPTOP", old[short]): short_c,
            self.copy_in(huge, dropbox, old[huge]): "new",
            self.copy_in(long, "-LAPTOP-2", long_now): long,
        }
        want.update({short_c2: v1b[short], huge_c: v1[huge]})

        def check(mirror, out, failures=()):
            notes = []
            written, failed = kluis_recover.recover(str(mirror), self.ident, str(out), notes)
            self.assertEqual(sorted(failed), sorted(failures))
            self.assertEqual(sorted(written), sorted(want))
            self.assertEqual(plain_tree(out), want)
            return {pathlib.Path(mirror, p): why for p, why in notes}

        notes = check(self.mirror, self.dir / "recovered")
        self.assertEqual(set(notes), {p for p, kept in pending.items() if kept != "new"})
        for p, kept in pending.items():
            if kept != "new":
                self.assertTrue(notes[p].endswith(f"the same content is in {kept}"), notes[p])
        r = subprocess.run([sys.executable, str(HERE / "kluis_recover.py"),
                            str(self.dir / "home" / "identity.kluiskey"), "/dev/stdin",
                            str(self.mirror), str(self.dir / "recovered-cli")],
                           input=self.PASS + "\n", capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.splitlines()), sorted(want))
        self.assertEqual(r.stderr.count("not written"), 2, r.stderr)

        # What the agent wrote before 012b159: the hashed conflict copy's
        # ciphertext renamed as it is, its header naming the original; and
        # a hashed copy whose header's name is not its stem's. The §8.4
        # check refuses both (decrypted under the header's name, they would
        # overwrite the current version of `long`).
        bad = self.dir / "bad-mirror"
        shutil.copytree(self.mirror, bad)
        bad_c = bad / self.cpath(long_c).relative_to(self.mirror)
        bad_c.write_bytes(old[long])
        bad_c.with_name(bad_c.name[:-4] + " (1).kls").write_bytes(old[long])
        del want[long_c]
        check(bad, self.dir / "recovered-bad",
              [(str(p.relative_to(bad)), "hashed file name does not match")
               for p in (bad_c, bad_c.with_name(bad_c.name[:-4] + " (1).kls"))])
        want[long_c] = v1[long]

        # The agent settles the same copies under the same names, and the
        # settled mirror recovers to the same files, with nothing left over.
        self.start_agent()
        self.wait(lambda: not any(p.exists() for p in pending) and plain_tree(self.plain) == want,
                  f"the copies settled as the tool named them: {sorted(plain_tree(self.plain))}")
        self.stop_agent()
        self.assertEqual(check(self.mirror, self.dir / "recovered-settled"), {})
        for p in kluis_files(self.mirror):
            self.assertEqual(kluis_recover.split_sync_suffix(p.name[:-4])[1], "", p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
