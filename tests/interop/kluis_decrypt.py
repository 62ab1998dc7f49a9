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

import collections
import hashlib
import hmac
import struct
import sys

from cryptography.exceptions import InvalidTag
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
    if m > 4194304 or t > 64 or p > 16:
        raise KluisError("too costly key-derivation parameters")
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

    def decap(self, kem, enc):
        """The KEM shared secret for `enc`, with this identity's key for `kem`."""
        return self.xwing_decap(enc) if kem == XWING else self.x25519_decap(enc)

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


HPKEContext = collections.namedtuple("HPKEContext", "suite key base_nonce exporter_secret")


def hpke_key_schedule(kem_id, shared_secret, info):
    """RFC 9180 §5.1 KeySchedule in base mode (no PSK), KDF 0x0001, AEAD 0x0002.
    With the receiver's decapsulation this is SetupBaseR."""
    suite = b"HPKE" + struct.pack(">HHH", kem_id, 0x0001, 0x0002)
    psk_id_hash = labeled_extract(b"", b"psk_id_hash", b"", suite)
    info_hash = labeled_extract(b"", b"info_hash", info, suite)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(shared_secret, b"secret", b"", suite)
    return HPKEContext(suite,
                       labeled_expand(secret, b"key", context, 32, suite),
                       labeled_expand(secret, b"base_nonce", context, 12, suite),
                       labeled_expand(secret, b"exp", context, 32, suite))  # Nh = 32


def hpke_open(kem_id, shared_secret, info, aad, ct):
    """OpenBase: the first message (sequence number 0) of a base-mode context."""
    ctx = hpke_key_schedule(kem_id, shared_secret, info)
    return AESGCM(ctx.key).decrypt(ctx.base_nonce, ct, aad)


def hpke_export(kem_id, shared_secret, info, exporter_context, length):
    """RFC 9180 §5.3 secret export from a base-mode context."""
    ctx = hpke_key_schedule(kem_id, shared_secret, info)
    return labeled_expand(ctx.exporter_secret, b"sec", exporter_context, length, ctx.suite)


# ---- FORMAT.md §4: the header ----------------------------------------------

XWING, X25519 = 0x647A, 0x0020
XWING_BATCH, X25519_BATCH = 0xE47A, 0x8020

# Known stanza types (§4.2, §4.8): the HPKE KEM, its `enc` and body lengths,
# and whether the stanza is a batch stanza (HPKE exporter) or direct (OpenBase).
StanzaType = collections.namedtuple("StanzaType", "kem enc_len body_len batch")
STANZA_TYPES = {
    XWING: StanzaType(XWING, 1120, 1168, False),
    X25519: StanzaType(X25519, 32, 80, False),
    XWING_BATCH: StanzaType(XWING, 1120, 1168, True),
    X25519_BATCH: StanzaType(X25519, 32, 80, True),
}

Stanza = collections.namedtuple("Stanza", "kem key_id body")
Header = collections.namedtuple("Header", "file_id stanzas meta_nonce meta_ct authenticated mac length")


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


def parse_header(data):
    """§4: parse the header and check its canonical encoding; no keys needed."""
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
        known = STANZA_TYPES.get(kem)
        if (known is not None and length != known.body_len) or not 1 <= length <= 4096:
            raise KluisError("malformed header: stanza length")
        body = r.take(length)
        if kem == 0x0000:  # §4.7 padding: zeros only, at most one, no key
            if any(key_id) or any(body) or any(s.kem == 0x0000 for s in stanzas):
                raise KluisError("malformed header: padding stanza")
        elif any(s.kem == kem and s.key_id == key_id for s in stanzas):
            raise KluisError("malformed header: duplicate stanza")
        stanzas.append(Stanza(kem, key_id, body))
    if all(s.kem == 0x0000 for s in stanzas):
        raise KluisError("malformed header: no recipient stanzas")
    meta_nonce, meta_len = r.take(12), r.u32()
    if not 272 <= meta_len <= 4112 or (meta_len - 16) % 256:
        raise KluisError("malformed header: metadata length")
    meta_ct = r.take(meta_len)
    authenticated = data[:r.at]
    mac = r.take(32)
    return Header(file_id, stanzas, meta_nonce, meta_ct, authenticated, mac, r.at)


def open_stanza(stanza, file_id, identity):
    """The file key in one stanza of a known type (§4.2 direct, §4.8 batch)."""
    t = STANZA_TYPES[stanza.kem]
    enc, ct = stanza.body[:t.enc_len], stanza.body[t.enc_len:]
    aad = struct.pack(">H", stanza.kem) + stanza.key_id
    try:
        ss = identity.decap(t.kem, enc)
        if t.batch:
            wrap_key = hpke_export(t.kem, ss, b"kluis/v1/batch", b"kluis/v1/batch-file-key" + file_id, 32)
            file_key = AESGCM(wrap_key).decrypt(b"\0" * 12, ct, aad)
        else:
            file_key = hpke_open(t.kem, ss, b"kluis/v1/file-key" + file_id, aad, ct)
    except (InvalidTag, ValueError):
        raise KluisError("the header failed to authenticate")
    if len(file_key) != 32:
        raise KluisError("the header failed to authenticate")
    return file_key


def mac_ok(header, file_key):
    """§4.3 key schedule, §4.6 header MAC."""
    mac_key = hkdf_expand(hkdf_extract(header.file_id, file_key), b"kluis/v1/header-mac", 32)
    expected = hmac.new(mac_key, header.authenticated, hashlib.sha256).digest()
    return hmac.compare_digest(expected, header.mac)


def find_file_key(header, identity):
    """§4.5: try only the stanzas with our key id and a known type, X-Wing
    (direct or batch) first; skip one that does not open or whose key fails
    the header MAC (§4.6), and return the first key that passes it."""
    ours = [s for s in header.stanzas if s.key_id == identity.key_id and s.kem in STANZA_TYPES]
    if not ours:
        raise KluisError("no matching recipient")
    ours.sort(key=lambda s: STANZA_TYPES[s.kem].kem != XWING)
    for stanza in ours:
        try:
            file_key = open_stanza(stanza, header.file_id, identity)
        except KluisError:
            continue
        if mac_ok(header, file_key):
            return file_key
    raise KluisError("the header failed to authenticate")


def decrypt(data, identity, meta_out=None):
    """(plaintext, metadata name, label); with a dict `meta_out`, also every
    metadata field present (§4.4) in it: name, size, mtime as (seconds,
    nanoseconds), label."""
    header = parse_header(data)
    file_id, meta_nonce, meta_ct = header.file_id, header.meta_nonce, header.meta_ct
    file_key = find_file_key(header, identity)

    # §4.3 key schedule (the MAC of §4.6 was checked by find_file_key).
    def subkey(label):
        return hkdf_expand(hkdf_extract(file_id, file_key), label, 32)

    # §4.4 metadata.
    meta = AESGCM(subkey(b"kluis/v1/metadata")).decrypt(meta_nonce, meta_ct, file_id)
    m = Reader(meta)
    present = m.take(1)[0]
    if present & ~0x0F:
        raise KluisError("invalid metadata")
    name = m.take(m.u16()).decode() if present & 1 else None
    size = struct.unpack(">Q", m.take(8))[0] if present & 2 else None
    mtime = None
    if present & 4:
        mtime = (struct.unpack(">q", m.take(8))[0], m.u32())
        if mtime[1] >= 10**9:
            raise KluisError("invalid metadata")
    label = m.take(m.take(1)[0]).decode() if present & 8 else None
    if any(meta[m.at:]) or len(meta) != max(1, -(-m.at // 256)) * 256:
        raise KluisError("invalid metadata padding")

    # §5 payload: Cobblestone-256.
    payload = data[header.length:]
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
    if meta_out is not None:
        meta_out.update(name=name, size=size, mtime=mtime, label=label)
    return plain, name, label


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-4], file=sys.stderr)
        return 2
    try:
        with open(argv[2], "rb") as f:
            # §3: the first line, without its line ending (LF or CR LF).
            password = f.read().split(b"\n")[0].removesuffix(b"\r")
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
