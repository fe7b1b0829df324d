#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""odmr_client.py - a scripted ODMR client for the tests of autoturn's ODMR
service, for what fetchmail (the real client used elsewhere) cannot do:
STARTTLS on the ODMR connection, commands out of order, malformed lines,
and the customer's side of a turnaround over TLS. It is a test driver,
not a fake of anything autoturn talks to in production.

usage: odmr_client.py [--source ADDR] [--sink DIR] HOST PORT STEP...

Each STEP is sent in order; after each, the server's whole reply is
printed as "> " + line. Special steps:
  STARTTLS          send it, and on 220 do the TLS handshake (no verification)
  CRAM USER PASS    AUTH CRAM-MD5 with the computed response
  PLAIN USER PASS   AUTH PLAIN with an initial response
  RAW:TEXT          send TEXT + CRLF as is (Python escapes allowed: \\x00)
  SILENT:N          send nothing; wait up to N seconds for the server
  TURN              after "250 OK now reversing": act as the customer's SMTP
                    server: 220, EHLO, MAIL, RCPT, DATA (each message saved
                    to --sink as N.eml with X-Rcpt: lines), QUIT
Exit status 0; protocol details are for the caller to check.
"""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import sys


class Conn:
    def __init__(self, host, port, source):
        self.s = socket.create_connection((host, port), timeout=30,
                                          source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self.line()
            print("> " + line, flush=True)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()


def cram(c, user, password):
    r = c.cmd("AUTH CRAM-MD5")
    if not r[-1].startswith("334 "):
        return
    challenge = base64.b64decode(r[-1][4:])
    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    c.cmd(base64.b64encode(f"{user} {digest}".encode()).decode())


def turn(c, sink):
    """The customer's SMTP server side after the turnaround."""
    n = 0
    rcpts = []
    c.send(b"220 customer.test ESMTP\r\n")
    while True:
        try:
            line = c.line()
        except EOFError:
            print("turn: connection closed", flush=True)
            return
        print("< " + line, flush=True)
        verb = line.split(" ", 1)[0].upper()
        if verb == "EHLO":
            c.send(b"250-customer.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
        elif verb == "MAIL":
            rcpts = []
            c.send(b"250 2.1.0 Ok\r\n")
        elif verb == "RCPT":
            rcpts.append(line[8:])
            c.send(b"250 2.1.5 Ok\r\n")
        elif verb == "DATA":
            c.send(b"354 go ahead\r\n")
            body = []
            while True:
                dl = c.line()
                if dl == ".":
                    break
                body.append(dl[1:] if dl.startswith(".") else dl)
            n += 1
            with open(os.path.join(sink, f"{n}.eml"), "w") as f:
                for r in rcpts:
                    f.write(f"X-Rcpt: {r}\n")
                f.write("\n".join(body) + "\n")
            c.send(b"250 2.0.0 Ok: queued\r\n")
        elif verb == "QUIT":
            c.send(b"221 2.0.0 Bye\r\n")
            print(f"turn: {n} message(s) received", flush=True)
            return
        else:
            c.send(b"502 5.5.1 no\r\n")


def main(argv):
    source = sink = None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--source":
            source = argv[1]
        elif argv[0] == "--sink":
            sink = argv[1]
        argv = argv[2:]
    host, port, steps = argv[0], int(argv[1]), argv[2:]
    c = Conn(host, port, source)
    try:
        c.reply()                                   # greeting
        for step in steps:
            if step == "STARTTLS":
                if c.cmd("STARTTLS")[-1].startswith("220"):
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                    c.s = ctx.wrap_socket(c.s)
                    print("tls: " + c.s.version(), flush=True)
            elif step.startswith("CRAM "):
                _, user, password = step.split(" ", 2)
                cram(c, user, password)
            elif step.startswith("PLAIN "):
                _, user, password = step.split(" ", 2)
                token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
                c.cmd("AUTH PLAIN " + token)
            elif step.startswith("RAW:"):
                c.send(step[4:].encode().decode("unicode_escape").encode("latin-1") + b"\r\n")
                c.reply()
            elif step.startswith("SILENT:"):
                c.s.settimeout(float(step[7:]))
                c.reply()
            elif step == "TURN":
                turn(c, sink)
            else:
                c.cmd(step)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        print("closed", flush=True)
    except socket.timeout:
        print("timeout", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
