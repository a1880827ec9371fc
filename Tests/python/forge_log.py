#!/usr/bin/env python3
"""Writes a C2SP tlog-tiles folder from chosen entries, its checkpoint signed
with a log key made by `milestones keygen`: a hostile log for mirror's tests.

    forge_log.py KEY LEDGER DIR MODE

MODE: `joined` (the last two records in one entry, the checkpoint one record
short), `huge` (the checkpoint claims 2^63 - 1 records), `origin` (the
checkpoint names another origin than the ledger's). Standard library and
`cryptography` only."""
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

key, ledger, out, mode = sys.argv[1:5]
H = lambda b: hashlib.sha256(b).digest()
leaf = lambda e: H(b"\0" + e)


def mth(hs):
    if len(hs) == 1:
        return hs[0]
    k = 1
    while k * 2 < len(hs):
        k *= 2
    return H(b"\1" + mth(hs[:k]) + mth(hs[k:]))


def index_path(n):
    g = []
    while True:
        g.append("%03d" % (n % 1000))
        n //= 1000
        if n == 0:
            break
    g = g[::-1]
    return "/".join(["x" + x for x in g[:-1]] + [g[-1]])


lines = open(ledger, "rb").read().split(b"\n")[:-1]
origin = json.loads(lines[0])["event"]["name"]
entries = lines[:-2] + [lines[-2] + b"\n" + lines[-1]] if mode == "joined" else lines
hashes = [leaf(e) for e in entries]
assert len(entries) < 256
w = len(entries)
for level_dir, payload in [("tile/0/", b"".join(hashes)), ("tile/entries/", b"".join(len(e).to_bytes(2, "big") + e for e in entries))]:
    p = os.path.join(out, level_dir + index_path(0) + ("" if w == 256 else ".p/%d" % w))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(payload)
size = 2**63 - 1 if mode == "huge" else len(entries)
name_on_checkpoint = "evil.example/other" if mode == "origin" else origin
body = "%s\n%d\n%s\n" % (name_on_checkpoint, size, base64.b64encode(mth(hashes)).decode())
_, _, kname, kid, raw = open(key).read().strip().split("+", 4)
signature = Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw)[1:]).sign(body.encode())
open(os.path.join(out, "checkpoint"), "w").write(body + "\n\u2014 %s %s\n" % (kname, base64.b64encode(bytes.fromhex(kid) + signature).decode()))
