#!/usr/bin/env python3
"""Recover a whole Kluis mirror without Kluis and without the broker,
written from docs/FORMAT.md alone (§8, with §1-7 from kluis_decrypt.py).

    python3 kluis_recover.py IDENTITY_FILE PASSPHRASE_FILE MIRROR OUTPUT_DIR

Opens the folder with your own identity and, for a folder shared with a
group you belong to, with the group's keys from the group key files in the
mirror (§8.7); decrypts every name (§8.3, §8.4) and every file (§7) into
OUTPUT_DIR. Prints one line per file written. Exit status 0 when every file
was recovered; 1 with one line on stderr per failure.
"""

import base64
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


def decrypt_any(data, identities):
    """§4.5: decrypt with whichever identity has a stanza (by key id)."""
    ids = {s.key_id for s in kluis_decrypt.parse_header(data).stanzas}
    for ident in identities:
        if ident.key_id in ids:
            return kluis_decrypt.decrypt(data, ident)
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


def open_folder(mirror, identities):
    with open(os.path.join(mirror, FOLDER_META), "rb") as f:
        plain, name, _ = decrypt_any(f.read(), identities)
    if name != FOLDER_META:
        raise KluisError("not folder metadata")
    return FolderMeta(plain)


# ---- §8.1 walking the mirror ------------------------------------------------

def recover(mirror, identity, out_dir):
    """Decrypt every file of the mirror into out_dir. Returns (written
    plaintext paths, failures as (mirror path, reason))."""
    keys = [identity] + group_keys(mirror, identity)
    meta = open_folder(mirror, keys)
    written, failed = [], []

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
                stem = cname[:-4]
                with open(cpath, "rb") as f:
                    plain, mname, _ = decrypt_any(f.read(), keys)
                if is_hashed(stem):
                    # §8.4: the name is in the header; it must hash to the stem.
                    if mname is None or meta.encrypt_name(mname) != stem:
                        raise KluisError("hashed file name does not match")
                    pname = mname
                else:
                    pname = meta.decrypt_name(stem)
                os.makedirs(pdir, exist_ok=True)
                target = os.path.join(pdir, pname)
                with open(target, "wb") as f:
                    f.write(plain)
                written.append(os.path.relpath(target, out_dir))
            except (KluisError, OSError, UnicodeDecodeError) as e:
                failed.append((os.path.relpath(cpath, mirror), str(e)))

    walk(mirror, out_dir)
    return written, failed


def main(argv):
    if len(argv) != 5:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    try:
        with open(argv[2], "rb") as f:
            password = f.read().split(b"\n")[0]
        with open(argv[1], "rb") as f:
            identity = kluis_decrypt.open_identity(f.read(), password)
        written, failed = recover(argv[3], identity, argv[4])
    except (KluisError, OSError, ValueError) as e:
        print(f"kluis_recover: {e}", file=sys.stderr)
        return 1
    for p in written:
        print(p)
    for p, why in failed:
        print(f"kluis_recover: {p}: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
