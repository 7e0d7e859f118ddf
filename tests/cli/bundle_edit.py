#!/usr/bin/env python3
"""bundle_edit.py -- reads and alters lane bundles for tests/cli/bundle.sh,
written from the format in compiler/bundle/README.md alone (not from the C
code), so that the test also checks what the README says.

  bundle_edit.py list FILE                   kind, name, data offset, size per entry
  bundle_edit.py digest FILE [--stdlib]      the source digest, computed here
  bundle_edit.py extract FILE NAME           a SOURCE's bytes to stdout
  bundle_edit.py flip FILE OUT KIND [NAME] [--reseal]
                                             flip one bit in the middle of an entry's data
                                             (--reseal: recompute the trailing SHA-256)
  bundle_edit.py set-source FILE OUT NAME NEWFILE
                                             replace a SOURCE's bytes; recompute the
                                             manifest's digests and the trailer (unsigned only)
  bundle_edit.py set-program FILE DONOR OUT  DONOR's PROGRAM (and its checksum and routes
                                             in the manifest) in FILE; trailer recomputed
"""
import hashlib
import json
import struct
import sys

KINDS = {1: "MANIFEST", 2: "PROGRAM", 3: "SOURCE", 4: "SIG"}
CODES = {v: k for k, v in KINDS.items()}


def parse(b):
    if b[:8] != b"LANEBNDL":
        sys.exit("not a bundle")
    version, count = struct.unpack_from("<II", b, 8)
    pos, entries = 16, []
    for _ in range(count):
        kind, zero, nname, n = struct.unpack_from("<BBHI", b, pos)
        name = b[pos + 8:pos + 8 + nname].decode()
        data = b[pos + 8 + nname:pos + 8 + nname + n]
        entries.append({"kind": kind, "name": name, "data": data, "off": pos + 8 + nname})
        pos += 8 + nname + n
    if pos != len(b) - 32 or hashlib.sha256(b[:pos]).digest() != b[pos:]:
        sys.exit("bad trailer")
    return version, entries


def write(version, entries):
    out = bytearray(b"LANEBNDL" + struct.pack("<II", version, len(entries)))
    for e in entries:
        name = e["name"].encode()
        out += struct.pack("<BBHI", e["kind"], 0, len(name), len(e["data"])) + name + e["data"]
    return bytes(out + hashlib.sha256(out).digest())


def digest(entries, stdlib_only=False):
    h = hashlib.sha256()
    for e in entries:
        if e["kind"] != 3 or (stdlib_only and not e["name"].startswith("std/")):
            continue
        name = e["name"].encode()
        h.update(struct.pack("<I", len(name)) + name + struct.pack("<Q", len(e["data"])) + e["data"])
    return "sha256:" + h.hexdigest()


def find(entries, kind, name=None):
    for e in entries:
        if e["kind"] == CODES[kind] and (name is None or e["name"] == name):
            return e
    sys.exit("no %s %s" % (kind, name or ""))


def main(a):
    b = open(a[1], "rb").read()
    cmd = a[0]
    if cmd == "flip":   # works on the raw bytes: the bundle may be signed
        version, entries = parse(b)
        rest = [x for x in a[4:] if x != "--reseal"]
        e = find(entries, a[3], rest[0] if rest else None)
        out = bytearray(b)
        out[e["off"] + len(e["data"]) // 2] ^= 0x01
        if "--reseal" in a:
            out[-32:] = hashlib.sha256(bytes(out[:-32])).digest()
        open(a[2], "wb").write(bytes(out))
        return
    version, entries = parse(b)
    if cmd == "list":
        for e in entries:
            print(KINDS.get(e["kind"], "?"), e["name"] or "-", e["off"], len(e["data"]))
    elif cmd == "digest":
        print(digest(entries, "--stdlib" in a))
    elif cmd == "extract":
        sys.stdout.buffer.write(find(entries, "SOURCE", a[2])["data"])
    elif cmd == "set-source":
        find(entries, "SOURCE", a[3])["data"] = open(a[4], "rb").read()
        m = find(entries, "MANIFEST")
        j = json.loads(m["data"])
        j["source_digest"], j["stdlib_digest"] = digest(entries), digest(entries, True)
        m["data"] = json.dumps(j, indent=2).encode()
        open(a[2], "wb").write(write(version, entries))
    elif cmd == "set-program":
        _, donor = parse(open(a[2], "rb").read())
        find(entries, "PROGRAM")["data"] = find(donor, "PROGRAM")["data"]
        m, dm = find(entries, "MANIFEST"), json.loads(find(donor, "MANIFEST")["data"])
        j = json.loads(m["data"])
        j["program_checksum"], j["routes"] = dm["program_checksum"], dm["routes"]
        m["data"] = json.dumps(j, indent=2).encode()
        open(a[3], "wb").write(write(version, entries))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
