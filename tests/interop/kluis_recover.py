#!/usr/bin/env python3
"""Recover a whole Kluis mirror without Kluis and without the broker,
written from docs/FORMAT.md alone (§8, with §1-7 from kluis_decrypt.py).

    python3 kluis_recover.py IDENTITY_FILE PASSPHRASE_FILE MIRROR OUTPUT_DIR

Opens the folder with your own identity and, for a folder shared with a
group you belong to, with the group's keys from the group key files in the
mirror (§8.7); decrypts every name (§8.3, §8.4) and every file (§7) into
OUTPUT_DIR. A sync client's copy of a file ("<name> (1).kls", §8.5) is
written under the Kluis conflict name its content would get (§8.5 step 3,
§8.6), or not at all when that content is in the folder already (step 2).
Prints one line per file written, and on stderr one line per copy not
written (the reason in parentheses). Exit status 0 when every file was
recovered; 1 with one line on stderr per failure.
"""

import base64
import datetime
import hashlib
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

import kluis_decrypt
from kluis_decrypt import Identity, KluisError, Reader, hkdf_expand, hkdf_extract

GROUP_DIR = ".kluis-groups"
FOLDER_META = ".kluis-folder"
RESERVED = ".kluis-"
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def decrypt_any(data, identities, meta_out=None):
    """§4.5: decrypt with whichever identity has a stanza (by key id)."""
    ids = {s.key_id for s in kluis_decrypt.parse_header(data).stanzas}
    for ident in identities:
        if ident.key_id in ids:
            return kluis_decrypt.decrypt(data, ident, meta_out)
    raise KluisError("no matching recipient")


# ---- §8.7 group key files ---------------------------------------------------

def parse_group_key_file(plain):
    """The (version, Identity) entries of a group key file's payload."""
    if len(plain) < 10 or plain[:8] != b"KLSGRPK1":
        raise KluisError("not a group key file")
    count = struct.unpack(">H", plain[8:10])[0]
    if not 1 <= count <= 64 or len(plain) != 10 + 68 * count:
        raise KluisError("malformed group key file")
    out, last = [], 0
    for i in range(count):
        entry = plain[10 + 68 * i:10 + 68 * (i + 1)]
        version = struct.unpack(">I", entry[:4])[0]
        if version <= last:
            raise KluisError("malformed group key file: versions")
        last = version
        secret = entry[4:]  # §3: xwing_seed || x25519_secret
        out.append((version, Identity(secret[:32], secret[32:])))
    return out


def group_keys(mirror, identity):
    """Every group key the group key files in `mirror` give `identity`
    (files not encrypted to it are skipped; names are not relied on)."""
    d = os.path.join(mirror, GROUP_DIR)
    if not os.path.isdir(d):
        return []
    keys = []
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        try:
            plain, meta_name, _ = decrypt_any(data, [identity])
        except KluisError:
            continue
        if meta_name != ".kluis-group":
            raise KluisError(f"{name}: not a group key file")
        keys.extend(k for _, k in parse_group_key_file(plain))
    return keys


# ---- §8.2 folder metadata ---------------------------------------------------

class FolderMeta:
    def __init__(self, plain):
        if len(plain) < 8 or plain[:7] != b"KLSFOLD" or plain[7:8] not in (b"1", b"2"):
            raise KluisError("unsupported folder metadata")
        r = Reader(plain)
        version = r.take(8)[7] - ord("0")
        self.folder_id, self.name_secret = r.take(16), r.take(32)
        self.epoch, self.owner, self.title, self.label = 0, "", "", None
        if version == 2:
            self.epoch = r.u32()
            self.owner = r.take(r.u16()).decode()
            self.title = r.take(r.u16()).decode()
            n = r.take(1)[0]
            self.label = r.take(n).decode() if n else None
        count = r.u16()
        if not 1 <= count <= 256:
            raise KluisError("malformed folder metadata: count")
        self.members = []
        for _ in range(count):
            kind, name = (r.take(1)[0], r.take(r.u16()).decode()) if version == 2 else (0, None)
            if kind > 2:
                raise KluisError("malformed folder metadata: kind")
            self.members.append((kind, name, r.take(r.u16()).decode()))
        if r.at != len(plain):
            raise KluisError("malformed folder metadata: trailing bytes")
        # §8.3 name key.
        prk = hkdf_extract(self.folder_id, self.name_secret)
        self.siv = AESSIV(hkdf_expand(prk, b"kluis/names/v1", 64))

    def encrypt_name(self, name):
        """§8.3/8.4: the mirror component of a plaintext name."""
        raw = name.encode()
        p = 16 - len(raw) % 16
        ct = self.siv.encrypt(raw + bytes([p]) * p, [b"kluis/name/v1", self.folder_id])
        direct = base64.b32encode(ct).decode().rstrip("=").lower()
        if len(direct) <= 154:
            return direct
        digest = hashlib.sha256(b"kluis/longname/v1" + ct).digest()
        return "h" + base64.b32encode(digest).decode().rstrip("=").lower()

    def decrypt_name(self, b32):
        """§8.3: a direct component back to its name (KluisError if not one)."""
        if not b32 or any(c not in "abcdefghijklmnopqrstuvwxyz234567" for c in b32):
            raise KluisError("not an encrypted name")
        try:
            ct = base64.b32decode(b32.upper() + "=" * (-len(b32) % 8))
            padded = self.siv.decrypt(ct, [b"kluis/name/v1", self.folder_id])
        except (ValueError, InvalidTag):
            raise KluisError("not a name of this folder")
        p = padded[-1] if padded else 0
        if not 1 <= p <= 16 or padded[-p:] != bytes([p]) * p:
            raise KluisError("bad name padding")
        return padded[:-p].decode()


def is_hashed(stem):
    return len(stem) == 53 and stem.startswith("h")


def split_sync_suffix(base):
    """§8.5: a file name without `.kls`, split at the first character
    outside the base32 alphabet into (leading part, sync client's suffix)."""
    for i, c in enumerate(base):
        if c not in ALPHABET:
            return base[:i], base[i:]
    return base, ""


def conflict_date(seconds):
    """§8.6: `YYYY-MM-DD HHMMSS`, UTC, of whole seconds (rounded down)."""
    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return f"{t.year:04}-{t.month:02}-{t.day:02} {t.hour:02}{t.minute:02}{t.second:02}"


def conflict_name(name, device, date):
    """§8.6: `<stem> (conflict <device> <date>)<.ext>`, `.ext` from the last
    `.` unless that is a leading dot."""
    i = name.rfind(".")
    stem, ext = (name[:i], name[i:]) if i > 0 else (name, "")
    return f"{stem} (conflict {device} {date}){ext}"


def open_folder(mirror, identities):
    with open(os.path.join(mirror, FOLDER_META), "rb") as f:
        plain, name, _ = decrypt_any(f.read(), identities)
    if name != FOLDER_META:
        raise KluisError("not folder metadata")
    return FolderMeta(plain)


# ---- §8.1 walking the mirror ------------------------------------------------

def recover(mirror, identity, out_dir, notes=None):
    """Decrypt every file of the mirror into out_dir. Returns (written
    plaintext paths, failures as (mirror path, reason)); a list `notes`
    gets (mirror path, reason) for each sync-client copy not written."""
    keys = [identity] + group_keys(mirror, identity)
    meta = open_folder(mirror, keys)
    written, failed, copies = {}, [], []  # written: plaintext path -> SHA-256

    def write(rel, plain):
        target = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(plain)
        written[rel] = hashlib.sha256(plain).digest()

    def walk(cdir, pdir):
        for cname in sorted(os.listdir(cdir)):
            if cname.startswith(RESERVED):
                continue
            cpath = os.path.join(cdir, cname)
            try:
                if os.path.isdir(cpath):
                    if is_hashed(cname):
                        with open(os.path.join(cpath, ".kluis-name")) as f:
                            pname = meta.decrypt_name(f.read().strip())
                        if meta.encrypt_name(pname) != cname:
                            raise KluisError("hashed directory name does not match")
                    else:
                        pname = meta.decrypt_name(cname)
                    walk(cpath, os.path.join(pdir, pname))
                    continue
                if not cname.endswith(".kls"):
                    raise KluisError("not a Kluis file")
                # §8.5: a sync client's copy has a suffix after the stem.
                stem, suffix = split_sync_suffix(cname[:-4])
                fields = {}
                with open(cpath, "rb") as f:
                    plain, mname, _ = decrypt_any(f.read(), keys, fields)
                if is_hashed(stem):
                    # §8.4: the name is in the header; it must hash to the
                    # stem (the suffix of a copy plays no part).
                    if mname is None or meta.encrypt_name(mname) != stem:
                        raise KluisError("hashed file name does not match")
                    pname = mname
                else:
                    # §8.3, §8.5: the entry's name wins over the header's.
                    pname = meta.decrypt_name(stem)
                if suffix:
                    mtime = fields["mtime"][0] if fields["mtime"] else os.stat(cpath).st_mtime_ns // 10**9
                    copies.append((cpath, os.path.join(pdir, pname), plain, mtime))
                    continue
                write(os.path.join(pdir, pname), plain)
            except (KluisError, OSError, UnicodeDecodeError) as e:
                failed.append((os.path.relpath(cpath, mirror), str(e)))

    walk(mirror, "")

    # §8.5: each copy after every file of the folder is known. It is kept
    # unless its content is under the original's name, or under the
    # conflict name (device `sync`, `sync 2`, ...) it would get.
    for cpath, of, plain, mtime in sorted(copies, key=lambda c: c[0]):
        h = hashlib.sha256(plain).digest()
        rel = os.path.relpath(cpath, mirror)
        try:
            if written.get(of) == h:
                kept = of
            else:
                parent, name = os.path.split(of)
                for n in range(1, 1000):
                    device = "sync" if n == 1 else f"sync {n}"
                    kept = os.path.join(parent, conflict_name(name, device, conflict_date(mtime)))
                    if kept not in written:
                        write(kept, plain)
                        kept = None
                        break
                    if written[kept] == h:
                        break
                else:
                    raise KluisError("no free conflict-copy name")
            if kept is not None and notes is not None:
                notes.append((rel, f"a sync-client copy of {of}; the same content is in {kept}"))
        except (KluisError, OSError) as e:
            failed.append((rel, str(e)))
    return list(written), failed


def main(argv):
    if len(argv) != 5:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    try:
        with open(argv[2], "rb") as f:
            password = f.read().split(b"\n")[0]
        with open(argv[1], "rb") as f:
            identity = kluis_decrypt.open_identity(f.read(), password)
        notes = []
        written, failed = recover(argv[3], identity, argv[4], notes)
    except (KluisError, OSError, ValueError) as e:
        print(f"kluis_recover: {e}", file=sys.stderr)
        return 1
    for p in written:
        print(p)
    for p, why in notes:
        print(f"kluis_recover: {p}: not written ({why})", file=sys.stderr)
    for p, why in failed:
        print(f"kluis_recover: {p}: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
