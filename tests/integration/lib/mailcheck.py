# SPDX-License-Identifier: ISC
"""mailcheck - what the integration tests check in delivered mail.

    strip_ours(data) -> (received, rest)
        data starts with our Received: header (the one autoturn-flusher
        adds, "by HOST (autoturn)"): it is split off, continuation lines
        included; rest is the message below it. received is None (and
        rest is data) when the first header is not ours.
    after_sink(data) -> data without the Received: header smtp-sink adds
    received_ok(received, by, client=None, helo=None, rcpt=None, qid=None)
        -> "" when our Received: line is well formed (RFC 5321 4.4: from,
        by, id, for, and a date-time that parses), else what is wrong.
    Command line: mailcheck.py strip FILE (the message below our line).
"""
import email.utils
import re
import sys

_OURS = re.compile(rb'^Received: (?:[^\n]*\n[ \t])*?[^\n]*\(autoturn\)', re.S)


def _header_end(data, start=0):
    """Index just past the header field that starts at start."""
    i = data.index(b'\n', start) + 1
    while i < len(data) and data[i:i + 1] in (b' ', b'\t'):
        i = data.index(b'\n', i) + 1
    return i


def strip_ours(data):
    if not data.startswith(b'Received: '):
        return None, data
    end = _header_end(data)
    field = data[:end]
    if b'(autoturn)' not in field:
        return None, data
    return field, data[end:]


def after_sink(data):
    if not data.startswith(b'Received: '):
        return data
    return data[_header_end(data):]


def received_ok(received, by, client=None, helo=None, rcpt=None, qid=None):
    if received is None:
        return 'no Received: line of ours'
    text = received.decode('utf-8', 'replace')
    if not text.endswith('\n'):
        return 'not a whole header'
    flat = re.sub(r'\r?\n[ \t]+', ' ', text.rstrip('\r\n'))
    if '\n' in flat or '\r' in flat:
        return 'bad folding: %r' % text
    m = re.match(r'^Received: (?:from (?P<from>[^ ]+)(?: \((?P<tcp>[^)]*)\))? )?'
                 r'by (?P<by>[^ ]+) \(autoturn\)(?: id (?P<id>[A-Za-z0-9._-]+))?'
                 r'(?: for <(?P<for>[^>]*)>)?; (?P<date>.+)$', flat)
    if not m:
        return 'does not parse: %r' % flat
    if m.group('by') != by:
        return 'by %s, want %s' % (m.group('by'), by)
    if email.utils.parsedate_tz(m.group('date')) is None:
        return 'bad date %r' % m.group('date')
    if client is not None:
        tcp = m.group('tcp') or ''
        lit = '[IPv6:%s]' % client if ':' in client else '[%s]' % client
        if lit not in (tcp or m.group('from') or ''):
            return 'client %s missing in %r' % (lit, flat)
    if helo is not None and m.group('from') != helo:
        return 'from %s, want %s' % (m.group('from'), helo)
    if rcpt is not None and m.group('for') != rcpt:
        return 'for %s, want %s' % (m.group('for'), rcpt)
    if rcpt is None and m.group('for') is not None and qid == 'nofor':
        return 'unexpected for clause'
    if qid not in (None, 'nofor') and m.group('id') != qid:
        return 'id %s, want %s' % (m.group('id'), qid)
    return ''


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'strip':
        d = open(sys.argv[2], 'rb').read()
        sys.stdout.buffer.write(strip_ours(d)[1])
    else:
        sys.exit('usage: mailcheck.py strip FILE')
