#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# import_check.py - what "autoturnctl import" put into a customer's spool,
# checked against copies of the source messages (tests/cli/t_import.sh):
#   import_check.py SPOOL CUSTOMER PREFIX SOURCE...
# Every SOURCE (a qmail-local maildir file) must be in SPOOL/CUSTOMER
# exactly once, found by its Message-ID: envelope sender = Return-Path,
# recipient = Delivered-To without PREFIX, arrival = the seconds the file
# name starts with, queue id "import." + 32 hex digits; body = the file
# without its first two lines, every LF written as CR LF. Nothing else may
# be in the spool. Prints "ok N", or each difference (exit 1).
import os
import re
import sys


def spool_files(spool, customer):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(spool, customer, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, n) for n in sorted(os.listdir(d)) if not n.startswith(".")]
    return out


def parse_spool(path):
    data = open(path, "rb").read()
    end = data.index(b"X-Autoturn-End:\n") + len(b"X-Autoturn-End:\n")
    env = {}
    for line in data[:end].decode().splitlines():
        key, _, val = line.partition(": ")
        env.setdefault(key, []).append(val)
    return env, data[end:]


def message_id(body):
    m = re.search(rb"^Message-ID: (\S+)\r?$", body, re.M | re.I)
    return m.group(1) if m else None


def main():
    spool, customer, prefix, sources = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    problems = []
    held = {}
    for f in spool_files(spool, customer):
        env, body = parse_spool(f)
        held.setdefault(message_id(body), []).append((f, env, body))
    for src in sources:
        data = open(src, "rb").read()
        l1, l2, rest = data.split(b"\n", 2)
        mid = message_id(rest)
        copies = held.pop(mid, [])
        if len(copies) != 1:
            problems.append("%s: %d copies in the spool" % (src, len(copies)))
            continue
        f, env, body = copies[0]
        sender = l1.decode("latin-1")[len("Return-Path: "):]
        rcpt = "<" + l2.decode("latin-1")[len("Delivered-To: ") + len(prefix):] + ">"
        want = {
            "X-Autoturn-Customer": [customer],
            "X-Autoturn-Sender": [sender],
            "X-Autoturn-Rcpt": [rcpt],
            "X-Autoturn-Arrival": [os.path.basename(src).split(".")[0]],
        }
        for k, v in want.items():
            if env.get(k) != v:
                problems.append("%s: %s is %s, want %s" % (f, k, env.get(k), v))
        qid = env.get("X-Autoturn-Queue-Id", [""])[0]
        if not re.fullmatch(r"import\.[0-9a-f]{32}", qid):
            problems.append("%s: queue id %r" % (f, qid))
        if body != rest.replace(b"\n", b"\r\n"):
            problems.append("%s: body differs from %s below its first two lines" % (f, src))
    for mid, copies in held.items():
        problems.append("%s: not from any source (%s)" % (copies[0][0], mid))
    for p in problems:
        print(p)
    if not problems:
        print("ok %d" % len(sources))
    sys.exit(1 if problems else 0)


main()
