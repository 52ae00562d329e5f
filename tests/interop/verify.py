#!/usr/bin/env python3
"""Independent verifier for auditship export bundles (format version 1).

Written from the documented formats alone -- the module documentation of
core/src/bundle.rs, seal.rs, canonical.rs, checkpoint.rs and identity.rs,
and RFC 9162 section 2.1 -- with nothing but the Python standard library.
It shows that a third party can check an export without auditship's code.
Needs Python 3.9 or later.

    usage: verify.py BUNDLE [--pubkey FILE]

Exit 0 and a summary when everything verifies; exit 1 and the first problem
(line, leaf index, agent, seq) otherwise; exit 2 on a usage error. Without
--pubkey the checkpoint's signature is reported as "not checked", and every
event is still checked against the checkpoint's root.
"""
import argparse
import hashlib
import json
import re
import sys

# Hex that is hashed or signed as text must be lowercase; hex that is only
# decoded (proofs, the signature) may be either case.
HEX64 = re.compile(r"[0-9a-f]{64}\Z")
ANYHEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
ANYHEX128 = re.compile(r"[0-9a-fA-F]{128}\Z")
HEADER_KEYS = {"auditship_bundle", "checkpoint", "query", "events"}
CHECKPOINT_KEYS = {"origin", "size", "root", "time", "key_id", "signature"}
ENTRY_KEYS = {"leaf_index", "queue", "event", "proof"}

class Bad(Exception):
    """The first problem found: its 1-based line, what, and which event."""

    def __init__(self, line, what, event=None):
        super().__init__(what)
        self.line, self.what, self.event = line, what, event

    def __str__(self):
        where = f"line {self.line}"
        if self.event is not None:
            where += " (leaf {}, agent {}, seq {})".format(*self.event)
        return f"{where}: {self.what}"

def need(ok, line, what, event=None):
    """Raise the problem `what` at `line` unless `ok`."""
    if not ok:
        raise Bad(line, what, event)


# --- Ed25519 signature verification, RFC 8032 section 5.1 ------------------
# Points are kept in extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z,
# x*y = T/Z. Verification only: nothing here is constant-time or signs.
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

def point_decode(s):
    """RFC 8032 5.1.3: 32 bytes to a point, or None if not a valid point."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P != 0:
        if (v * x * x + u) % P != 0:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)

def point_add(p, q):
    """RFC 8032 5.1.4: addition in extended coordinates (also doubles)."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * D * p[3] * q[3] % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)

def point_mul(k, p):
    r = (0, 1, 1, 0)  # the neutral element
    while k:
        if k & 1:
            r = point_add(r, p)
        p, k = point_add(p, p), k >> 1
    return r

def point_equal(p, q):
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0

BASE = point_decode((4 * pow(5, -1, P) % P).to_bytes(32, "little"))  # y = 4/5, x even

def ed25519_verify(public, message, signature):
    """RFC 8032 5.1.7, checking [S]B = R + [k]A (which the RFC allows)."""
    if len(signature) != 64:
        return False
    a, r = point_decode(public), point_decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    return point_equal(point_mul(s, BASE), point_add(r, point_mul(k, a)))


# --- RFC 9162 section 2.1 Merkle hashing -----------------------------------
def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()

def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()

def inclusion_root(index, size, leaf, path):
    """RFC 9162 2.1.3.2: the root that `path` proves for leaf `index` of a
    tree of `size` leaves, or None if the path has the wrong shape."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None  # path too long
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:  # skip levels where we are a lone right edge
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None  # sn != 0: path too short


# --- JSON ------------------------------------------------------------------
def no_float(text):
    raise ValueError(f"number {text} is not an integer")

def strict_loads(text):
    """json.loads that refuses floats, NaN and Infinity (the formats have none)."""
    return json.loads(text, parse_float=no_float, parse_constant=no_float)

def canonical(obj):
    """canonical_v1 (canonical.rs): the event without hash and prev_hash."""
    rest = {k: v for k, v in obj.items() if k not in ("hash", "prev_hash")}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0

def is_str(v, form):
    return isinstance(v, str) and form.match(v) is not None

def parse_object(line_no, text, keys, what, event=None):
    """A JSON object with exactly the members `keys`."""
    try:
        obj = strict_loads(text)
    except ValueError as e:
        raise Bad(line_no, f"{what} is not valid JSON: {e}", event)
    need(isinstance(obj, dict), line_no, f"{what} is not a JSON object", event)
    if keys is not None and set(obj) != keys:
        raise Bad(line_no, f"{what} has members {sorted(obj)}, expected {sorted(keys)}", event)
    return obj


# --- the bundle ------------------------------------------------------------
def check_header(text, pubkey):
    """Line 1: version, checkpoint fields, and the checkpoint's signature."""
    h = parse_object(1, text, HEADER_KEYS, "header")
    version, cp = h["auditship_bundle"], h["checkpoint"]
    need(version == 1 and is_int(version), 1,
         f"unsupported bundle version {version!r} (this verifier knows 1)")
    need(is_int(h["events"]), 1, "header: events is not a non-negative integer")
    need(isinstance(h["query"], dict), 1, "header: query is not an object")
    need(isinstance(cp, dict) and set(cp) == CHECKPOINT_KEYS, 1,
         f"checkpoint must be an object with members {sorted(CHECKPOINT_KEYS)}")
    for name in ("origin", "time"):  # signed as text, one per line
        need(isinstance(cp[name], str) and cp[name] and "\n" not in cp[name], 1,
             f"checkpoint {name} must be a non-empty string without a newline")
    need(is_int(cp["size"]), 1, "checkpoint size is not a non-negative integer")
    need(is_str(cp["root"], HEX64), 1, "checkpoint root is not 64 lowercase hex digits")  # signed as text
    need(is_str(cp["signature"], ANYHEX128), 1, "checkpoint signature is not 128 hex digits")
    need(isinstance(cp["key_id"], str), 1, "checkpoint key_id is not a string")  # not signed: a hint only
    need(cp["size"] > 0 or cp["root"] == hashlib.sha256(b"").hexdigest(), 1,
         "checkpoint of size 0 must have the root SHA-256('')")
    if pubkey is None:
        return h, "not checked (no --pubkey given)"
    # checkpoint.rs: the signed bytes, every line ending in "\n".
    message = "auditship-checkpoint-v1\n{origin}\n{size}\n{root}\n{time}\n".format(**cp).encode()
    ours = hashlib.sha256(pubkey).hexdigest()[:16]
    if not ed25519_verify(pubkey, message, bytes.fromhex(cp["signature"])):
        hint = "" if ours == cp["key_id"] else f"; it names key {cp['key_id']}, the given key is {ours}"
        raise Bad(1, f"checkpoint signature does not verify with the given key{hint}")
    return h, f"verified with the given key ({ours})"

def check_event(line_no, text, size, state):
    """One event line: structure, order, event hash, sealed form, proof."""
    e = parse_object(line_no, text, ENTRY_KEYS, "event line")
    leaf = e["leaf_index"]
    need(is_int(leaf), line_no, "leaf_index is not a non-negative integer")
    ident = (leaf, "?", "?")
    need(isinstance(e["queue"], str), line_no, "queue is not a string", ident)  # groups chains, not hashed
    need(isinstance(e["event"], str), line_no, "event is not a string", ident)
    need(isinstance(e["proof"], list) and all(is_str(p, ANYHEX64) for p in e["proof"]), line_no,
         "proof is not a list of 64-hex-digit hashes", ident)

    # The event's own fields, for naming it in every later message.
    ev = parse_object(line_no, e["event"], None, "event", ident)
    agent, seq = ev.get("agent_id"), ev.get("seq")
    ident = (leaf, agent if isinstance(agent, str) else "?", seq if is_int(seq) else "?")
    need(isinstance(agent, str) and is_int(seq), line_no, "event has no agent_id string or no seq integer",
         ident)
    for name in ("hash", "prev_hash"):
        need(is_str(ev.get(name), HEX64), line_no, f"event {name} is not 64 lowercase hex digits", ident)

    # Bundle order: strictly ascending leaf indexes, all inside the checkpoint.
    last = state["last_leaf"]
    need(last is None or leaf > last, line_no,
         f"leaf index {leaf} does not follow {last} on the line before (out of order or repeated)", ident)
    state["last_leaf"] = leaf
    need(leaf < size, line_no, f"leaf index {leaf} is outside the checkpoint's tree of {size}", ident)

    # seal.rs: hash = SHA-256(prev_hash bytes || canonical_v1), and the stored
    # bytes are exactly the sealed form: canonical without "}" plus the suffix.
    try:
        canon = canonical(ev)
    except UnicodeEncodeError:
        raise Bad(line_no, "event holds a string that is not valid Unicode", ident)
    recomputed = hashlib.sha256(bytes.fromhex(ev["prev_hash"]) + canon).hexdigest()
    need(recomputed == ev["hash"], line_no, "event hash does not match its contents (event altered)", ident)
    stored = e["event"].encode()
    sealed = canon[:-1] + b',"hash":"%s","prev_hash":"%s"}' % (ev["hash"].encode(), ev["prev_hash"].encode())
    need(stored == sealed, line_no, "event bytes are not the sealed canonical form of the event", ident)

    # bundle.rs step 2: the event is a leaf of the checkpoint's tree; the
    # leaf input is its (just recomputed) chain hash (seal.rs, "Merkle leaves").
    path = [bytes.fromhex(p) for p in e["proof"]]
    got = inclusion_root(leaf, size, leaf_hash(bytes.fromhex(ev["hash"])), path)
    need(got is not None, line_no, f"inclusion proof has the wrong length for leaf {leaf} of {size}", ident)
    need(got == state["root"], line_no, "inclusion proof does not lead to the checkpoint's root", ident)

    # bundle.rs step 4: count links between neighbours of one agent/queue chain.
    chain = (agent, e["queue"])
    if state["chains"].get(chain) == ev["prev_hash"]:
        state["links"] += 1
    state["chains"][chain] = ev["hash"]

def verify(path, pubkey):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        die(f"verify.py: cannot read {path}: {e}")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline
    need(lines, 1, "empty bundle: no header line")
    texts = []  # (line number, text); empty lines are skipped but counted
    for i, raw in enumerate(lines, 1):
        raw = raw.removesuffix(b"\r")
        try:
            if raw or i == 1:
                texts.append((i, raw.decode("utf-8")))
        except UnicodeDecodeError as e:
            raise Bad(i, f"not valid UTF-8: {e}")
    header, signature = check_header(texts[0][1], pubkey)
    cp = header["checkpoint"]
    state = {"last_leaf": None, "root": bytes.fromhex(cp["root"]), "chains": {}, "links": 0}
    for line_no, text in texts[1:]:
        check_event(line_no, text, cp["size"], state)
    count = len(texts) - 1
    if count != header["events"]:
        raise Bad(1, f"header says {header['events']} events, the bundle has {count} event lines")
    print(f"bundle {path}: OK")
    print(f"  checkpoint: origin {cp['origin']!r}, size {cp['size']}, root {cp['root']}, time {cp['time']}")
    print(f"  signature: {signature}")
    print(f"  events: {count} (leaf hashes, inclusion proofs, event hashes, sealed canonical form)")
    print(f"  chains: {len(state['chains'])} agent/queue chains, {state['links']} links between neighbours")

def die(message):
    """A usage problem, not a verification failure: exit 2."""
    print(message, file=sys.stderr)
    sys.exit(2)

def load_pubkey(path):
    """identity.rs: 64 hex digits, optionally after "auditship-ed25519-public-v1 "."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        die(f"verify.py: cannot read public key {path}: {e}")
    text = text.removeprefix("auditship-ed25519-public-v1 ").strip().lower()
    if not HEX64.match(text) or point_decode(bytes.fromhex(text)) is None:
        die(f"verify.py: {path} does not hold an Ed25519 public key (64 hex digits)")
    return bytes.fromhex(text)

def main():
    parser = argparse.ArgumentParser(description="Verify an auditship export bundle, independently.")
    parser.add_argument("bundle")
    parser.add_argument("--pubkey", help="the collector's public key file (else the signature is not checked)")
    args = parser.parse_args()
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    pubkey = load_pubkey(args.pubkey) if args.pubkey else None
    try:
        verify(args.bundle, pubkey)
    except Bad as bad:
        print(f"bundle {args.bundle}: FAILED at {bad}", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
