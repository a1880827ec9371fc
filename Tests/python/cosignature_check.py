#!/usr/bin/env python3
"""An independent C2SP tlog-cosignature (cosignature/v1) implementation, from
the spec alone (c2sp.org/tlog-cosignature, c2sp.org/signed-note), with
Python's `cryptography` for Ed25519. The tests use it to cosign checkpoints
that `milestones verify` must accept, and to check the cosignatures that
`milestones cosign` writes.

  cosignature_check.py add NOTE WITNESS.key TIME   prints NOTE with a cosignature line added
  cosignature_check.py check NOTE WITNESS.vkey     exit 0 if NOTE carries a valid cosignature
  cosignature_check.py junk NOTE NAME LENGTH       prints NOTE with a random signature line
                                                   of LENGTH bytes (an unknown key's)
"""
import base64, hashlib, os, struct, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives import serialization

DASH = "\u2014 "


def split(note: str):
    body, sep, sigs = note.rpartition("\n\n")
    assert sep, "no blank line"
    return body + "\n", sigs


def key_id(name: str, alg: int, pub: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + pub).digest()[:4]


def message(body: str, t: int) -> bytes:
    return b"cosignature/v1\ntime %d\n" % t + body.encode()


def main():
    cmd = sys.argv[1]
    note = open(sys.argv[2], encoding="utf-8").read()
    body, sigs = split(note)
    if cmd == "add":
        parts = open(sys.argv[3]).read().strip().split("+", 4)
        assert parts[:2] == ["PRIVATE", "KEY"]
        name, raw = parts[2], base64.b64decode(parts[4])
        assert raw[0] == 0x04, "not a cosignature/v1 key"
        priv = Ed25519PrivateKey.from_private_bytes(raw[1:])
        pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        kid = key_id(name, 4, pub)
        assert kid.hex() == parts[3], "key id"
        t = int(sys.argv[4])
        sig = kid + struct.pack(">Q", t) + priv.sign(message(body, t))
        sys.stdout.write(note + DASH + name + " " + base64.b64encode(sig).decode() + "\n")
    elif cmd == "junk":
        name, n = sys.argv[3], int(sys.argv[4])
        sys.stdout.write(note + DASH + name + " " + base64.b64encode(os.urandom(n)).decode() + "\n")
    elif cmd == "check":
        name, kid_hex, b64 = open(sys.argv[3]).read().strip().split("+", 2)
        raw = base64.b64decode(b64)
        assert raw[0] == 0x04, "not a cosignature/v1 verifier key"
        pub = raw[1:]
        assert key_id(name, 4, pub).hex() == kid_hex
        for line in sigs.splitlines():
            assert line.startswith(DASH)
            n, s = line[len(DASH):].split(" ")
            s = base64.b64decode(s)
            if n != name or s[:4].hex() != kid_hex or len(s) != 76:
                continue
            (t,) = struct.unpack(">Q", s[4:12])
            try:
                Ed25519PublicKey.from_public_bytes(pub).verify(s[12:], message(body, t))
            except Exception:
                continue
            print("ok: cosigned by %s at %d" % (name, t))
            return 0
        print("no valid cosignature by " + name)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
