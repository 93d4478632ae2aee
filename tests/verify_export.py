#!/usr/bin/env python3
"""Independent verifier of a mandat audit export, written from the specification alone
(audit.md) with the Python standard library only.

Usage: verify_export.py EXPORT.jsonl CHECKPOINT.json PUBLIC_KEYS.json

- EXPORT.jsonl: `mandat audit export --format jsonl` (or GET /api/v1/audit/export?format=jsonl);
  one canonical event per line, or {"index","leaf_hash","pruned":true} where retention pruned it.
- CHECKPOINT.json: GET /api/v1/audit/checkpoints/latest, or one line of the witness file.
- PUBLIC_KEYS.json: GET /api/v1/audit/public-key.

Checks: each line is the canonical JSON of its event (RFC 8785 = Python's sorted, compact
dumps) carrying its own index; the RFC 6962 Merkle root of the first tree_size leaves equals
the checkpoint's root; the signed note's body matches; its Ed25519 signature (RFC 8032,
reference algorithm below) verifies under a listed key whose signed-note key id matches.
Prints one line starting with "ok" and exits 0, or prints the problem and exits 1.
"""

import base64
import hashlib
import json
import sys

# --- Ed25519 verification, RFC 8032 §6 reference algorithm --------------------------------
P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493


def _inv(x):
    return pow(x, P - 2, P)


D = -121665 * _inv(121666) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    A = (a[1] - a[0]) * (b[1] - b[0]) % P
    B = (a[1] + a[0]) * (b[1] + b[0]) % P
    C = 2 * a[3] * b[3] * D % P
    Dd = 2 * a[2] * b[2] % P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F, G * H, F * G, E * H)


def _mul(s, pt):
    acc = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        s >>= 1
    return acc


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * _inv(D * y * y + 1)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * _inv(5) % P
_GX = _recover_x(_GY, 0)
BASE = (_GX, _GY, 1, _GX * _GY % P)


def _decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def ed25519_verify(public, msg, sig):
    if len(public) != 32 or len(sig) != 64:
        return False
    a = _decompress(public)
    r = _decompress(sig[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= Q:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % Q
    return _equal(_mul(s, BASE), _add(r, _mul(h, a)))


# --- RFC 6962 Merkle tree ------------------------------------------------------------------
def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def main(export_path, checkpoint_path, keys_path):
    with open(checkpoint_path, encoding="utf-8") as f:
        cp = json.loads(f.read().strip().splitlines()[-1])
    with open(keys_path, encoding="utf-8") as f:
        keys = json.load(f)["keys"]
    size = int(cp["tree_size"])

    # The signed note: body, blank line, signature lines "— <name> <base64(id ‖ sig)>".
    note = cp["note"]
    body, _, sigs = note.partition("\n\n")
    body += "\n"
    lines = body.split("\n")
    origin, note_size, note_root = lines[0], int(lines[1]), base64.b64decode(lines[2])
    if note_size != size or note_root.hex() != cp["root_hash"]:
        fail("the checkpoint record does not match its signed note")
    verified = False
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            fail("malformed signature line")
        name, blob = line[2:].rsplit(" ", 1)
        blob = base64.b64decode(blob)
        for k in keys:
            pub = base64.b64decode(k["public_key"])
            key_id = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
            if key_id == blob[:4] and ed25519_verify(pub, body.encode(), blob[4:]):
                verified = True
    if not verified:
        fail("no valid signature on the checkpoint")

    leaves = []
    with open(export_path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = line.rstrip("\n")
            ev = json.loads(line)
            if ev.get("index") != i:
                fail("line %d carries index %r" % (i, ev.get("index")))
            if ev.get("pruned") is True and "leaf_hash" in ev:
                leaves.append(bytes.fromhex(ev["leaf_hash"]))
                continue
            canonical = json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            if canonical != line:
                fail("line %d is not canonical JSON" % i)
            leaves.append(leaf_hash(line.encode("utf-8")))
    if len(leaves) < size:
        fail("the export has %d events, the checkpoint covers %d" % (len(leaves), size))
    root = mth(leaves[:size])
    if root.hex() != cp["root_hash"]:
        fail("the Merkle root of the export does not match the checkpoint")
    print("ok: %d events, root %s of tree size %d signed by %s" % (len(leaves), root.hex(), size, origin))


def self_test():
    # RFC 8032 §7.1, TEST 1 (empty message).
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert ed25519_verify(pub, b"", sig)
    assert not ed25519_verify(pub, b"x", sig)
    # RFC 6962 empty tree.
    assert mth([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


if __name__ == "__main__":
    self_test()
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    main(*sys.argv[1:])
