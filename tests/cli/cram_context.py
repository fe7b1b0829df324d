#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""cram_context.py - independent reference for the stored secret form:
prints "{CRAM-MD5}" + hex of the HMAC-MD5 outer then inner MD5 chaining
values (little-endian words) after one 64-byte block, as Dovecot's CRAM-MD5
scheme stores them. Pure Python MD5 compression (RFC 1321), used only by
tests/cli/t_secret.sh to check autoturnctl's output."""
import hashlib
import math
import struct
import sys

S = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
K = [int(abs(math.sin(i + 1)) * 2**32) & 0xFFFFFFFF for i in range(64)]


def rotl(x, c):
    return ((x << c) | (x >> (32 - c))) & 0xFFFFFFFF


def compress(state, block):
    a, b, c, d = state
    m = struct.unpack("<16I", block)
    for i in range(64):
        if i < 16:
            f, g = (b & c) | (~b & d), i
        elif i < 32:
            f, g = (d & b) | (~d & c), (5 * i + 1) % 16
        elif i < 48:
            f, g = b ^ c ^ d, (3 * i + 5) % 16
        else:
            f, g = c ^ (b | ~d), (7 * i) % 16
        f = (f + a + K[i] + m[g]) & 0xFFFFFFFF
        a, d, c = d, c, b
        b = (b + rotl(f, S[i])) & 0xFFFFFFFF
    return [(x + y) & 0xFFFFFFFF for x, y in zip(state, (a, b, c, d))]


def context(key, pad):
    init = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    block = bytes(k ^ pad for k in key.ljust(64, b"\0"))
    return struct.pack("<4I", *compress(init, block))


key = sys.argv[1].encode()
if len(key) > 64:
    key = hashlib.md5(key).digest()
print("{CRAM-MD5}" + (context(key, 0x5C) + context(key, 0x36)).hex())
