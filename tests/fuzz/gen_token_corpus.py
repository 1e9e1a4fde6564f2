#!/usr/bin/env python3
"""Seed corpus for tests/fuzz/fuzz_token.c: one good join token per address
form and one of each refusal (docs/godwitd.md, "Join tokens").

    tests/fuzz/gen_token_corpus.py tests/fuzz/corpus/token
"""
import base64
import hashlib
import os
import struct
import sys


def token(address, version=1, expiry=1900000000, cut=0, extra=b""):
    body = bytes([version, len(address)]) + address
    body += bytes(range(32)) + bytes(range(32, 64)) + struct.pack("<Q", expiry) + extra
    raw = body + hashlib.sha256(body).digest()[:4]
    if cut:
        raw = raw[:-cut]
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        "good-name": token(b"hostb.example:8443"),
        "good-ipv6": token(b"[fd00::1]:8443"),
        "good-ws": b"  " + token(b"10.0.0.2:8443") + b"\n",
        "version-2": token(b"hostb:8443", version=2),
        "truncated": token(b"hostb:8443", cut=10),
        "trailing": token(b"hostb:8443", extra=b"xx"),
        "bad-address": token(b"host b:8443"),
        "bad-port": token(b"hostb:0"),
        "zero-expiry": token(b"hostb:8443", expiry=0),
        "padding": token(b"hostb:8443") + b"==",
        "garbage": b"hello world, not a token",
        "empty": b"",
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
