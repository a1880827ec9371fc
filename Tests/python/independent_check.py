#!/usr/bin/env python3
"""Independent verifier for the milestones ledger, format 1.

Written from the specifications alone (docs/ledger-format.md, docs/cli.md,
docs/events.md), without looking at the Swift implementation, so that the test
suite can cross-check it.  It is an oracle, so it is strict: whatever the spec
does not clearly allow is rejected.

  independent_check.py ledger FILE
      every record: LF-terminated line, no CR, no BOM, UTF-8, canonical JSON,
      sha256, prev chain, seq, recorded_at, ledger.created only in record 1,
      unique event ids.  Prints `ok N HEADHEX`, or
      `fail seq=S line=L offset=O: reason` (S is `?` when unreadable).
  independent_check.py root FILE [N]
      RFC 9162 Merkle root (standard base64) of the first N lines (default all).
  independent_check.py inclusion PROOF.json FILE
  independent_check.py consistency PROOF.json FILE
      verify a `prove` output with RFC 9162 §2.1.3.2 / §2.1.4.2 and check its
      roots against the tree computed from FILE.  `root`, `inclusion` and
      `consistency` treat FILE only as LF-terminated leaves (run `ledger` for
      the record checks).  Consistency needs 0 < from_size < size, as in
      RFC 9162; from_size == size is rejected.
  independent_check.py checkpoint CHECKPOINT VKEY [LEDGER]
      verify the Ed25519 signed note (C2SP signed-note / tlog-checkpoint) and,
      with LEDGER, that the ledger is valid and holds the checkpointed tree.

Exit 0 on success, 1 when verification fails, 2 on usage or I/O errors.
Standard library plus `cryptography` only.
"""
import base64
import datetime
import hashlib
import json
import re
import sys

MAX_INT = 2**53 - 1
ZERO_HASH = "0" * 64
HEX64 = re.compile(r"[0-9a-f]{64}")
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
RECORD_MEMBERS = {"event", "prev", "recorded_at", "seq", "sha256"}
EM_DASH = "\u2014"


class Fail(Exception):
    """A verification failure (exit 1)."""


class LedgerFail(Fail):
    def __init__(self, seq, line, offset, reason):
        super().__init__(f"seq={seq} line={line} offset={offset}: {reason}")


class Usage(Exception):
    """Bad command line (exit 2)."""


def sha256(data):
    return hashlib.sha256(data).digest()


# ---------------------------------------------------------------- strict JSON

def _object(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        if not key.isascii():
            raise ValueError(f"non-ASCII key {key!r}")
        obj[key] = value
    return obj


def _integer(text):
    value = int(text)
    if abs(value) > MAX_INT:
        raise ValueError(f"integer out of range ±(2^53-1): {text}")
    return value


def _reject_float(text):
    raise ValueError(f"non-integer number {text}")


def _reject_constant(text):
    raise ValueError(f"{text} is not JSON")


def strict_loads(text):
    """json.loads that rejects duplicate keys, fractions/exponents, big ints, NaN."""
    try:
        return json.loads(text, object_pairs_hook=_object, parse_int=_integer,
                          parse_float=_reject_float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise Fail(f"invalid JSON: {e}") from None


def canonical(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def b64_hash(value, what):
    """Standard, padded, canonical base64 of exactly 32 bytes."""
    if not isinstance(value, str):
        raise Fail(f"{what}: not a string")
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise Fail(f"{what}: invalid base64") from None
    if base64.b64encode(raw).decode() != value:
        raise Fail(f"{what}: non-canonical base64")
    if len(raw) != 32:
        raise Fail(f"{what}: {len(raw)} bytes, expected 32")
    return raw


def b64(data):
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------- ledger

def split_lines(data):
    """[(offset, line bytes without LF)]; a final line without LF is a torn tail."""
    lines, pos = [], 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            raise LedgerFail("?", len(lines) + 1, pos, "torn tail: last line does not end with LF")
        lines.append((pos, data[pos:end]))
        pos = end + 1
    return lines


def check_record(raw, seq_expected, prev_expected, time_before, ids):
    """Check one line; return the record.  Raises Fail(reason); sets .seq if readable."""
    if b"\r" in raw:
        raise Fail("line contains CR")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Fail(f"invalid UTF-8 at byte {e.start} of the line") from None
    rec = strict_loads(text)
    if not isinstance(rec, dict):
        raise Fail("line is not a JSON object")
    seq = rec.get("seq") if type(rec.get("seq")) is int else "?"
    try:
        if canonical(rec) != text:
            raise Fail("line is not its own canonical JSON")
        if set(rec) != RECORD_MEMBERS:
            raise Fail(f"record members are {sorted(rec)}, expected {sorted(RECORD_MEMBERS)}")
        if seq == "?":
            raise Fail("seq is not an integer")
        event, prev, at, digest = rec["event"], rec["prev"], rec["recorded_at"], rec["sha256"]
        if not isinstance(digest, str) or not HEX64.fullmatch(digest):
            raise Fail("sha256 is not 64 lowercase hex digits")
        if not isinstance(prev, str) or not HEX64.fullmatch(prev):
            raise Fail("prev is not 64 lowercase hex digits")
        unhashed = {k: v for k, v in rec.items() if k != "sha256"}
        if hashlib.sha256(canonical(unhashed).encode("utf-8")).hexdigest() != digest:
            raise Fail("sha256 does not match the record")
        if prev != prev_expected:
            raise Fail(f"prev is {prev}, expected {prev_expected}")
        if seq != seq_expected:
            raise Fail(f"seq is {seq}, expected {seq_expected}")
        if not isinstance(at, str) or not TIMESTAMP.fullmatch(at):
            raise Fail(f"recorded_at {at!r} is not YYYY-MM-DDTHH:MM:SSZ")
        try:
            datetime.datetime(int(at[0:4]), int(at[5:7]), int(at[8:10]),
                              int(at[11:13]), int(at[14:16]), int(at[17:19]))
        except ValueError:
            raise Fail(f"recorded_at {at} is not a real UTC time") from None
        if time_before is not None and at < time_before:
            raise Fail(f"recorded_at {at} is earlier than the previous {time_before}")
        if not isinstance(event, dict):
            raise Fail("event is not an object")
        kind = event.get("type")
        if not isinstance(kind, str):
            raise Fail("event type is missing or not a string")
        if seq == 1:
            if kind != "ledger.created":
                raise Fail(f"record 1 holds {kind}, not ledger.created")
            name = event.get("name")
            if not isinstance(name, str) or not name:
                raise Fail("ledger.created has no name")
            if type(event.get("format")) is not int or event["format"] != 1:
                raise Fail("ledger.created format is not 1")
        elif kind == "ledger.created":
            raise Fail("ledger.created outside record 1")
        event_id = event.get("id")
        if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
            raise Fail(f"event id {event_id!r} is missing or malformed")
        if event_id in ids:
            raise Fail(f"event id {event_id} is not new")
    except Fail as e:
        e.seq = seq
        raise
    ids.add(event_id)
    return rec


def check_ledger(data):
    """Verify a whole ledger; return [(line bytes, record)].  Raises LedgerFail."""
    if not data:
        raise LedgerFail("?", 1, 0, "empty file: not a ledger")
    if data.startswith(b"\xef\xbb\xbf"):
        raise LedgerFail("?", 1, 0, "byte order mark")
    lines = split_lines(data)
    records, prev, time_before, ids = [], ZERO_HASH, None, set()
    for number, (offset, raw) in enumerate(lines, 1):
        try:
            rec = check_record(raw, number, prev, time_before, ids)
        except Fail as e:
            raise LedgerFail(getattr(e, "seq", "?"), number, offset, e) from None
        records.append((raw, rec))
        prev, time_before = rec["sha256"], rec["recorded_at"]
    return records


# ---------------------------------------------------------- Merkle (RFC 9162)

def leaf_hash(leaf):
    return sha256(b"\x00" + leaf)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def tree_hash(leaf_hashes):
    """MTH over already leaf-hashed entries (RFC 9162 §2.1.1)."""
    n = len(leaf_hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaf_hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)  # largest power of two < n
    return node_hash(tree_hash(leaf_hashes[:k]), tree_hash(leaf_hashes[k:]))


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2, step by step.  leaf is the leaf hash."""
    if not 0 <= index < size:
        raise Fail(f"leaf index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Fail("inclusion path is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Fail("inclusion path is too short")
    if r != root:
        raise Fail("inclusion proof does not lead to the root")


def verify_consistency(first, second, first_hash, second_hash, path):
    """RFC 9162 §2.1.4.2, step by step (defined for 0 < first < second)."""
    if not 0 < first < second:
        raise Fail(f"sizes {first} -> {second}: RFC 9162 needs 0 < from_size < size")
    if not path:
        raise Fail("consistency path is empty")
    if first & (first - 1) == 0:
        path = [first_hash] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Fail("consistency path is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Fail("consistency path is too short")
    if fr != first_hash:
        raise Fail("consistency proof does not lead to from_root")
    if sr != second_hash:
        raise Fail("consistency proof does not lead to root")


# ------------------------------------------------------------------- commands

def read(path):
    with open(path, "rb") as f:
        return f.read()


def file_leaf_hashes(path):
    return [leaf_hash(raw) for _, raw in split_lines(read(path))]


def int_member(value, what):
    if type(value) is not int:
        raise Fail(f"{what} is not an integer")
    return value


def load_proof(path, kind, members):
    proof = strict_loads(read(path).decode("utf-8"))
    if not isinstance(proof, dict) or set(proof) != members:
        raise Fail(f"proof members must be exactly {sorted(members)}")
    if proof["kind"] != kind:
        raise Fail(f"kind is {proof['kind']!r}, expected {kind!r}")
    if not isinstance(proof["hashes"], list):
        raise Fail("hashes is not an array")
    hashes = [b64_hash(h, f"hashes[{i}]") for i, h in enumerate(proof["hashes"])]
    return proof, hashes


def cmd_ledger(path):
    records = check_ledger(read(path))
    return f"ok {len(records)} {records[-1][1]['sha256']}"


def cmd_root(path, n=None):
    leaves = file_leaf_hashes(path)
    if n is None:
        n = len(leaves)
    elif re.fullmatch(r"0|[1-9][0-9]*", n):
        n = int(n)
    else:
        raise Usage(f"N must be a decimal integer, got {n!r}")
    if n > len(leaves):
        raise Fail(f"the file holds only {len(leaves)} lines, not {n}")
    return b64(tree_hash(leaves[:n]))


def cmd_inclusion(proof_path, path):
    proof, hashes = load_proof(proof_path, "inclusion", {"kind", "seq", "size", "root", "hashes"})
    seq, size = int_member(proof["seq"], "seq"), int_member(proof["size"], "size")
    root = b64_hash(proof["root"], "root")
    leaves = file_leaf_hashes(path)
    if not 1 <= seq <= size:
        raise Fail(f"seq {seq} is not within 1..size {size}")
    if size > len(leaves):
        raise Fail(f"size {size} exceeds the {len(leaves)} records of the file")
    verify_inclusion(seq - 1, size, leaves[seq - 1], hashes, root)
    if tree_hash(leaves[:size]) != root:
        raise Fail(f"root is not the root of the first {size} records of the file")
    return "ok"


def cmd_consistency(proof_path, path):
    proof, hashes = load_proof(proof_path, "consistency",
                               {"kind", "from_size", "size", "from_root", "root", "hashes"})
    first, second = int_member(proof["from_size"], "from_size"), int_member(proof["size"], "size")
    first_root = b64_hash(proof["from_root"], "from_root")
    root = b64_hash(proof["root"], "root")
    leaves = file_leaf_hashes(path)
    if second > len(leaves):
        raise Fail(f"size {second} exceeds the {len(leaves)} records of the file")
    verify_consistency(first, second, first_root, root, hashes)
    if tree_hash(leaves[:first]) != first_root:
        raise Fail(f"from_root is not the root of the first {first} records of the file")
    if tree_hash(leaves[:second]) != root:
        raise Fail(f"root is not the root of the first {second} records of the file")
    return "ok"


def valid_key_name(name):
    # As golang.org/x/mod/sumdb/note: non-empty, no whitespace, no "+".
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def parse_vkey(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Fail("verifier key is not UTF-8") from None
    if text.endswith("\n"):
        text = text[:-1]
    parts = text.split("+", 2)  # the base64 key itself may contain "+"
    if len(parts) != 3:
        raise Fail("verifier key is not <name>+<key id>+<key>")
    name, key_id, key = parts
    if not valid_key_name(name) or not re.fullmatch(r"[0-9a-f]{8}", key_id):
        raise Fail("verifier key: bad name or key id")
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:
        raise Fail("verifier key: invalid base64") from None
    if b64(raw) != key or len(raw) != 33 or raw[0] != 1:
        raise Fail("verifier key is not base64(0x01 || 32-byte Ed25519 key)")
    if sha256(name.encode() + b"\n" + raw)[:4].hex() != key_id:
        raise Fail("verifier key id does not match its name and key")
    return name, bytes.fromhex(key_id), raw[1:]


def parse_note(data):
    """Split a signed note into (body bytes, [(name, key id, signature)])."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Fail("checkpoint is not UTF-8") from None
    if text.startswith("\ufeff") or any(c < " " and c != "\n" for c in text):
        raise Fail("checkpoint contains a BOM or control characters (CR, tab, ...)")
    split = text.find("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise Fail("checkpoint is not body, blank line, signature lines")
    body, sig_lines = text[:split + 1], text[split + 2:-1].split("\n")
    sigs, seen = [], set()
    for line in sig_lines:
        if not line.startswith(EM_DASH + " "):
            raise Fail(f"not a signature line: {line!r}")
        name, _, sig = line[2:].partition(" ")
        try:
            raw = base64.b64decode(sig, validate=True)
        except ValueError:
            raise Fail(f"signature line {line!r}: invalid base64") from None
        if not valid_key_name(name) or b64(raw) != sig or len(raw) < 5:
            raise Fail(f"malformed signature line {line!r}")
        if (name, raw[:4]) in seen:
            raise Fail(f"two signatures by {name}")
        seen.add((name, raw[:4]))
        sigs.append((name, raw[:4], raw[4:]))
    return body.encode("utf-8"), sigs


def parse_checkpoint_body(body):
    lines = body.decode("utf-8")[:-1].split("\n")
    if len(lines) < 3 or any(line == "" for line in lines):
        raise Fail("checkpoint body needs origin, size, root and no empty lines")
    origin, size, root, extensions = lines[0], lines[1], lines[2], lines[3:]
    if not re.fullmatch(r"0|[1-9][0-9]*", size):
        raise Fail(f"checkpoint size {size!r} is not a decimal number")
    heads = [e for e in extensions if e.split(" ")[0] == "head"]
    if len(heads) > 1 or (heads and not re.fullmatch(r"head [0-9a-f]{64}", heads[0])):
        raise Fail("checkpoint head extension is malformed or repeated")
    return origin, int(size), b64_hash(root, "checkpoint root"), heads[0][5:] if heads else None


def cmd_checkpoint(note_path, vkey_path, ledger_path=None):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    name, key_id, public_key = parse_vkey(read(vkey_path))
    body, sigs = parse_note(read(note_path))
    mine = [sig for n, k, sig in sigs if n == name and k == key_id]
    if not mine:
        raise Fail(f"no signature by {name}+{key_id.hex()}")
    if len(mine[0]) != 64:
        raise Fail("signature is not 64 bytes")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(mine[0], body)
    except InvalidSignature:
        raise Fail("Ed25519 signature does not verify") from None
    origin, size, root, head = parse_checkpoint_body(body)
    if size < 1:
        raise Fail("checkpoint size is 0")
    if ledger_path is not None:
        try:
            records = check_ledger(read(ledger_path))
        except LedgerFail as e:
            raise Fail(f"ledger {e}") from None
        if origin != records[0][1]["event"]["name"]:
            raise Fail(f"origin {origin!r} is not the ledger name {records[0][1]['event']['name']!r}")
        if size > len(records):
            raise Fail(f"checkpoint size {size} but the ledger holds {len(records)} records "
                       "(truncated or rolled back)")
        if tree_hash([leaf_hash(raw) for raw, _ in records[:size]]) != root:
            raise Fail(f"root differs from the root of the ledger's first {size} records (fork)")
        if head is not None and head != records[size - 1][1]["sha256"]:
            raise Fail(f"head differs from the sha256 of record {size}")
    return "ok"


def normalized(event):
    """docs/events.md's defaults written out: precision day (not for ledger.created), an
    amount's qualifier exact, in a correction's changes too."""
    e = dict(event)
    if e.get("type") != "ledger.created":
        e.setdefault("precision", "day")

    def amount(a):
        return dict(a, qualifier=a.get("qualifier", "exact")) if isinstance(a, dict) else a

    if "amount" in e:
        e["amount"] = amount(e["amount"])
    if isinstance(e.get("changes"), dict) and "amount" in e["changes"]:
        e["changes"] = dict(e["changes"], amount=amount(e["changes"]["amount"]))
    return e


def cmd_normalized(input_path, path):
    """Each input event (JSON Lines, all recorded as the ledger's last records)
    is in the ledger normalised and in canonical form, byte for byte, with its
    id (the one given, or one the ledger gave)."""
    inputs = [strict_loads(l) for l in read(input_path).decode("utf-8").split("\n") if l.strip()]
    lines = [line for _, line in split_lines(read(path))]
    if len(lines) < len(inputs):
        raise Fail(f"{len(inputs)} input events, {len(lines)} records")
    for n, (given, raw) in enumerate(zip(inputs, lines[len(lines) - len(inputs):]), 1):
        text = raw.decode("utf-8")
        if not text.startswith('{"event":') or ',"prev":"' not in text:
            raise Fail(f"input line {n}: record is not shaped as expected")
        event_text = text[len('{"event":'):text.index(',"prev":"')]
        recorded = strict_loads(event_text)
        want = normalized(given)
        if "id" not in want:
            if not isinstance(recorded.get("id"), str):
                raise Fail(f"input line {n}: recorded without an id")
            want["id"] = recorded["id"]
        if event_text != canonical(want):
            raise Fail(f"input line {n}: recorded {event_text}, expected {canonical(want)}")
    return f"ok {len(inputs)}"


USAGE = """usage: independent_check.py ledger FILE
       independent_check.py normalized INPUT.jsonl FILE
       independent_check.py root FILE [N]
       independent_check.py inclusion PROOF.json FILE
       independent_check.py consistency PROOF.json FILE
       independent_check.py checkpoint CHECKPOINT VKEY [LEDGER]"""

COMMANDS = {
    "ledger": (cmd_ledger, 1, 1),
    "normalized": (cmd_normalized, 2, 2),
    "root": (cmd_root, 1, 2),
    "inclusion": (cmd_inclusion, 2, 2),
    "consistency": (cmd_consistency, 2, 2),
    "checkpoint": (cmd_checkpoint, 2, 3),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS \
            or not COMMANDS[argv[1]][1] <= len(argv) - 2 <= COMMANDS[argv[1]][2]:
        print(USAGE, file=sys.stderr)
        return 2
    command = COMMANDS[argv[1]][0]
    try:
        print(command(*argv[2:]))
        return 0
    except LedgerFail as e:
        print(f"fail {e}")
    except Fail as e:
        print(f"fail: {e}")
    except UnicodeDecodeError as e:
        print(f"fail: not UTF-8: {e}")
    except Usage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
