# SPDX-License-Identifier: ISC
"""peercheck - checks of tests/integration/lib/peer_cases.sh.

  peercheck.py PEERDIR MSGDIR
      every file the peer delivered (PEERDIR/mail/{new,cur}): its
      recipient (Envelope-to: or Delivered-To:), then the peer's own
      headers, then our Received: line (well formed: by
      flusher.autoturn.test, from helo.example.org ... [192.0.2.7], id
      4XyZ12abc, "for" exactly when the copy went to one recipient), then
      the held message byte for byte (MSGDIR/<tag>, matched by
      Message-ID, CRLF as LF). Prints "ok N" (N copies) or the problems.
  peercheck.py --has PEERDIR RCPT     exit 0 if a copy for RCPT arrived
  peercheck.py --dsn DSNDIR ACTION RCPT STATUS DIAG-PREFIX REMOTE
      exactly one DSN (the fake sendmail's N.msg) reports RCPT: parsed
      with the email package: multipart/report, a message/delivery-status
      part with Action ACTION, Status STATUS, a Diagnostic-Code starting
      with DIAG-PREFIX, Remote-MTA naming REMOTE. "ok", "no such DSN" or
      what is wrong.
"""
import email
import email.policy
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mailcheck import strip_ours, received_ok  # noqa: E402

MULTI = {'m100', 'm550', 'm450'}   # copies that went out with several recipients


def header_end(d, i):
    i = d.index(b'\n', i) + 1
    while i < len(d) and d[i:i + 1] in (b' ', b'\t'):
        i = d.index(b'\n', i) + 1
    return i


def split_copy(d):
    """(recipient, our Received field, the message below it)"""
    rcpt, i = None, 0
    while i < len(d) and d[i:i + 1] != b'\n':
        j = header_end(d, i)
        if d.startswith(b'Received: ', i) and b'(autoturn)' in d[i:j]:
            break
        m = re.match(rb'(?i)(Envelope-to|Delivered-To): *(.*)', d[i:j])
        if m and rcpt is None:
            rcpt = m.group(2).strip().decode('utf-8', 'replace')
        i = j
    ours, rest = strip_ours(d[i:])
    return rcpt, ours, rest


def copies(peer):
    for f in sorted(glob.glob(os.path.join(peer, 'mail', 'new', '*')) +
                    glob.glob(os.path.join(peer, 'mail', 'cur', '*'))):
        yield f, open(f, 'rb').read()


def check_copies(peer, msgdir):
    want = {}
    for f in os.listdir(msgdir):
        d = open(os.path.join(msgdir, f), 'rb').read().replace(b'\r\n', b'\n')
        m = re.search(rb'\nMessage-ID: <([^@]+)@', d)
        want[m.group(1).decode('utf-8')] = (f, d)
    bad, seen, n = [], set(), 0
    for f, d in copies(peer):
        n += 1
        rcpt, ours, rest = split_copy(d)
        m = re.search(rb'\nMessage-ID: <([^@]+)@', rest)
        tag = m.group(1).decode('utf-8') if m else None
        if tag not in want:
            bad.append('%s: unknown message' % f)
            continue
        name, body = want[tag]
        why = received_ok(ours, 'flusher.autoturn.test', client='192.0.2.7',
                          helo='helo.example.org', qid='4XyZ12abc',
                          rcpt=None if name in MULTI else rcpt)
        if why:
            bad.append('%s (%s): Received: %s' % (name, rcpt, why))
        if name in MULTI and ours is not None and b'\tfor <' in ours:
            bad.append('%s: "for" on a copy with several recipients' % name)
        if rest != body:
            bad.append('%s (%s): content differs (%d vs %d bytes)' % (name, rcpt, len(rest), len(body)))
        if (name, rcpt) in seen:
            bad.append('%s: %s twice' % (name, rcpt))
        seen.add((name, rcpt))
    print('\n'.join(bad[:20]) if bad else 'ok %d' % n)


def has(peer, rcpt):
    for f, d in copies(peer):
        if split_copy(d)[0] == rcpt:
            return 0
    return 1


def val(h):
    """a header value as text: raw UTF-8 bytes (RFC 6532) come back as they were"""
    if h is None:
        return ''
    s = str(h)
    try:
        return s.encode('utf-8', 'surrogateescape').decode('utf-8').strip()
    except UnicodeError:
        return s.strip()


def check_dsn(dsndir, action, rcpt, status, diag, remote):
    found = []
    for f in sorted(glob.glob(os.path.join(dsndir, '*.msg'))):
        msg = email.message_from_bytes(open(f, 'rb').read(), policy=email.policy.default)
        if msg.get_content_type() != 'multipart/report':
            continue
        for part in msg.walk():
            if part.get_content_type() != 'message/delivery-status':
                continue
            blocks = part.get_payload()      # per-message, then per-recipient
            for b in blocks[1:]:
                if val(b.get('Final-Recipient')) == 'rfc822; ' + rcpt:
                    found.append((f, msg, blocks[0], b))
    if not found:
        return 'no such DSN'
    if len(found) > 1:
        return '%d DSNs for %s' % (len(found), rcpt)
    f, msg, per_msg, b = found[0]
    errs = []
    if val(b.get('Action')) != action:
        errs.append('Action %r' % b.get('Action'))
    if val(b.get('Status')) != status:
        errs.append('Status %r' % b.get('Status'))
    dc = re.sub(r'\s+', ' ', val(b.get('Diagnostic-Code')))
    if not dc.startswith(diag):
        errs.append('Diagnostic-Code %r' % dc)
    if remote not in val(b.get('Remote-MTA')):
        errs.append('Remote-MTA %r' % b.get('Remote-MTA'))
    if val(msg.get('From')).find('MAILER-DAEMON@flusher.autoturn.test') < 0:
        errs.append('From %r' % msg.get('From'))
    if action == 'relayed':
        if val(per_msg.get('Original-Envelope-Id')) != 'env+1':
            errs.append('Original-Envelope-Id %r' % per_msg.get('Original-Envelope-Id'))
        if val(b.get('Original-Recipient')) != 'rfc822;' + rcpt:
            errs.append('Original-Recipient %r' % b.get('Original-Recipient'))
        if val(msg.get('Subject')) != 'Successful Mail Delivery Report':
            errs.append('Subject %r' % msg.get('Subject'))
    return '; '.join(errs) if errs else 'ok'


if __name__ == '__main__':
    a = sys.argv[1:]
    if a and a[0] == '--has':
        sys.exit(has(a[1], a[2]))
    elif a and a[0] == '--dsn':
        print(check_dsn(*a[1:7]))
    else:
        check_copies(a[0], a[1])
