#!/usr/bin/env python3
"""Kluis files decrypt with the independent decryptor (kluis_decrypt.py),
which was written from docs/FORMAT.md alone: the frozen vectors, and fresh
files made by the current `kluis` binary (KLUIS_BIN, default
target/debug/kluis) with both KEMs at chunk-edge sizes."""

import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import kluis_decrypt  # noqa: E402

FROZEN = HERE.parent / "vectors" / "frozen"
KLUIS = os.environ.get("KLUIS_BIN", str(HERE.parent.parent / "target" / "debug" / "kluis"))


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
