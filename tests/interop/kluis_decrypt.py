#!/usr/bin/env python3
"""An independent Kluis decryptor, written from docs/FORMAT.md alone.

It shares no code with Kluis: it uses Python's standard library (HMAC, SHA-2,
SHA-3, SHAKE) and the `cryptography` package (AES-GCM, X25519, ML-KEM-768,
Argon2id). It exists for two reasons: it shows that FORMAT.md is precise
enough to write a compatible decryptor, and it lets anyone decrypt their
files without Kluis.

    python3 kluis_decrypt.py IDENTITY_FILE PASSPHRASE_FILE INPUT.kluis > OUTPUT

Exit status 0 on success; 1 with one line on stderr on any failure. Nothing
is written to stdout unless the whole file authenticated.
"""

import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives import serialization


class KluisError(Exception):
    pass


def hkdf_extract(salt, ikm, h=hashlib.sha256):
    return hmac.new(salt if salt else b"\0" * h().digest_size, ikm, h).digest()


def hkdf_expand(prk, info, length, h=hashlib.sha256):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:length]


# ---- FORMAT.md §3: the identity file ---------------------------------------

def open_identity(data, password):
    if len(data) < 10 or data[:8] != b"KLUISKEY":
        raise KluisError("not a Kluis identity file")
    if data[8] != 1 or data[9] != 1 or len(data) != 130:
        raise KluisError("unsupported identity file")
    m, t, p = struct.unpack(">III", data[10:22])
    if m < 65536 or t < 3 or p < 1:
        raise KluisError("weak key-derivation parameters")
    salt, nonce, sealed = data[22:38], data[38:50], data[50:]
    key = Argon2id(salt=salt, length=32, iterations=t, lanes=p, memory_cost=m).derive(password)
    try:
        secret = AESGCM(key).decrypt(nonce, sealed, data[:50])
    except Exception:
        raise KluisError("wrong password")
    return Identity(secret[:32], secret[32:])


class Identity:
    """FORMAT.md §2: an X-Wing seed and an X25519 secret key."""

    def __init__(self, xwing_seed, x25519_secret):
        # X-Wing (draft-connolly-cfrg-xwing-kem-06): expand the seed.
        expanded = hashlib.shake_256(xwing_seed).digest(96)
        self.mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        self.xw_x25519 = x25519.X25519PrivateKey.from_private_bytes(expanded[64:96])
        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        self.xw_x25519_pub = self.xw_x25519.public_key().public_bytes(*raw)
        xwing_pub = self.mlkem.public_key().public_bytes_raw() + self.xw_x25519_pub
        self.x25519 = x25519.X25519PrivateKey.from_private_bytes(x25519_secret)
        self.x25519_pub = self.x25519.public_key().public_bytes(*raw)
        recipient = xwing_pub + self.x25519_pub
        self.key_id = hashlib.sha256(b"kluis/v1/fingerprint\0" + recipient).digest()[:16]

    def xwing_decap(self, ct):
        ss_m = self.mlkem.decapsulate(ct[:1088])
        ct_x = ct[1088:]
        ss_x = self.xw_x25519.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
        label = b"\\.//^\\"
        return hashlib.sha3_256(ss_m + ss_x + ct_x + self.xw_x25519_pub + label).digest()

    def x25519_decap(self, enc):
        # RFC 9180 §4.1 DHKEM(X25519, HKDF-SHA256).
        dh = self.x25519.exchange(x25519.X25519PublicKey.from_public_bytes(enc))
        suite = b"KEM" + struct.pack(">H", 0x0020)
        eae_prk = labeled_extract(b"", b"eae_prk", dh, suite)
        return labeled_expand(eae_prk, b"shared_secret", enc + self.x25519_pub, 32, suite)


# ---- RFC 9180 key schedule, base mode, HKDF-SHA256 + AES-256-GCM -----------

def labeled_extract(salt, label, ikm, suite):
    return hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)


def labeled_expand(prk, label, info, length, suite):
    return hkdf_expand(prk, struct.pack(">H", length) + b"HPKE-v1" + suite + label + info, length)


def hpke_open(kem_id, shared_secret, info, aad, ct):
    suite = b"HPKE" + struct.pack(">HHH", kem_id, 0x0001, 0x0002)
    psk_id_hash = labeled_extract(b"", b"psk_id_hash", b"", suite)
    info_hash = labeled_extract(b"", b"info_hash", info, suite)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(shared_secret, b"secret", b"", suite)
    key = labeled_expand(secret, b"key", context, 32, suite)
    nonce = labeled_expand(secret, b"base_nonce", context, 12, suite)
    return AESGCM(key).decrypt(nonce, ct, aad)


# ---- FORMAT.md §4: the header ----------------------------------------------

class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        if self.at + n > len(self.data):
            raise KluisError("malformed header: truncated")
        b = self.data[self.at:self.at + n]
        self.at += n
        return b

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]


def decrypt(data, identity):
    r = Reader(data)
    if r.take(8) != b"\x89KLUIS\r\n":
        raise KluisError("not a Kluis file")
    version, suite = r.take(1)[0], r.take(1)[0]
    if version != 1 or suite != 1:
        raise KluisError("unsupported version or suite")
    if r.u16() != 0:
        raise KluisError("malformed header: flags")
    file_id = r.take(16)
    count = r.u16()
    if not 1 <= count <= 256:
        raise KluisError("malformed header: stanza count")
    stanzas = []
    for _ in range(count):
        kem, key_id, length = r.u16(), r.take(16), r.u16()
        expected = {0x647A: 1168, 0x0020: 80}.get(kem)
        if (expected is not None and length != expected) or not 1 <= length <= 4096:
            raise KluisError("malformed header: stanza length")
        body = r.take(length)
        if kem == 0x0000:  # §4.7 padding: zeros only, at most one, no key
            if any(key_id) or any(body) or any(s[0] == 0x0000 for s in stanzas):
                raise KluisError("malformed header: padding stanza")
        elif any(s[0] == kem and s[1] == key_id for s in stanzas):
            raise KluisError("malformed header: duplicate stanza")
        stanzas.append((kem, key_id, body))
    if all(s[0] == 0x0000 for s in stanzas):
        raise KluisError("malformed header: no recipient stanzas")
    meta_nonce, meta_len = r.take(12), r.u32()
    if not 272 <= meta_len <= 4112 or (meta_len - 16) % 256:
        raise KluisError("malformed header: metadata length")
    meta_ct = r.take(meta_len)
    authenticated = data[:r.at]
    mac = r.take(32)

    # §4.5: find our stanza by key id (X-Wing first).
    file_key = None
    ours = [s for s in stanzas if s[1] == identity.key_id and s[0] in (0x647A, 0x0020)]
    if not ours:
        raise KluisError("no matching recipient")
    ours.sort(key=lambda s: s[0] != 0x647A)
    for kem, key_id, body in ours:
        enc_len = 1120 if kem == 0x647A else 32
        enc, ct = body[:enc_len], body[enc_len:]
        ss = identity.xwing_decap(enc) if kem == 0x647A else identity.x25519_decap(enc)
        try:
            file_key = hpke_open(kem, ss, b"kluis/v1/file-key" + file_id, struct.pack(">H", kem) + key_id, ct)
            break
        except Exception:
            continue
    if file_key is None or len(file_key) != 32:
        raise KluisError("the header failed to authenticate")

    # §4.3 key schedule, §4.6 MAC.
    def subkey(label):
        return hkdf_expand(hkdf_extract(file_id, file_key), label, 32)

    if not hmac.compare_digest(hmac.new(subkey(b"kluis/v1/header-mac"), authenticated, hashlib.sha256).digest(), mac):
        raise KluisError("the header failed to authenticate")

    # §4.4 metadata.
    meta = AESGCM(subkey(b"kluis/v1/metadata")).decrypt(meta_nonce, meta_ct, file_id)
    m = Reader(meta)
    present = m.take(1)[0]
    if present & ~0x0F:
        raise KluisError("invalid metadata")
    name = m.take(m.u16()).decode() if present & 1 else None
    size = struct.unpack(">Q", m.take(8))[0] if present & 2 else None
    if present & 4:
        m.take(12)
    label = m.take(m.take(1)[0]).decode() if present & 8 else None
    if any(meta[m.at:]) or len(meta) != max(1, -(-m.at // 256)) * 256:
        raise KluisError("invalid metadata padding")

    # §5 payload: Cobblestone-256.
    payload = data[r.at:]
    if len(payload) < 56:
        raise KluisError("payload truncated")
    salt, commitment = payload[:24], payload[24:56]
    context = b"kluis/v1/payload\x01\x01" + file_id
    info = b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\0" + salt + context
    okm = hkdf_expand(subkey(b"kluis/v1/payload"), info, 76, hashlib.sha512)
    key, base_nonce, expected_commitment = okm[:32], okm[32:44], okm[44:]
    if not hmac.compare_digest(commitment, expected_commitment):
        raise KluisError("payload key commitment mismatch")
    body, out, i, aes = payload[56:], [], 0, AESGCM(key)
    while True:
        chunk = body[i * 16400:(i + 1) * 16400]
        last = len(body) <= (i + 1) * 16400
        if last and not 16 <= len(chunk) <= 16399:
            raise KluisError("payload truncated")
        nonce = base_nonce[:4] + (int.from_bytes(base_nonce[4:], "big") ^ i).to_bytes(8, "big")
        try:
            out.append(aes.decrypt(nonce, chunk, None))
        except Exception:
            raise KluisError(f"chunk {i} failed to authenticate")
        if last:
            break
        i += 1
    plain = b"".join(out)
    if size is not None and size != len(plain):
        raise KluisError("size mismatch")
    return plain, name, label


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-4], file=sys.stderr)
        return 2
    try:
        with open(argv[2], "rb") as f:
            password = f.read().split(b"\n")[0]
        with open(argv[1], "rb") as f:
            identity = open_identity(f.read(), password)
        with open(argv[3], "rb") as f:
            plain, _name, _label = decrypt(f.read(), identity)
    except (KluisError, OSError, ValueError) as e:
        print(f"kluis_decrypt: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(plain)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
