# SPDX-License-Identifier: ISC
# peer_cases.sh - the cases of issue 14 against one real customer server
# (sourced after postfix.sh, flusher.sh and peers.sh, with tests/cli/lib.sh).
# Customer acme (virt.dom, delivery host ADDR:PORT, tls may) gets, held
# with the client recorded as the milter would (192.0.2.7, HELO
# helo.example.org, queue id 4XyZ12abc): an 8-bit message, an SMTPUTF8
# one (UTF-8 recipient and subject), 10 MiB, 100 recipients, DSN
# parameters (ENVID, RET=HDRS, NOTIFY=SUCCESS,FAILURE, ORCPT), a 550
# recipient, a 450 recipient, then 150 small messages. One flush must
# deliver everything deliverable: past a per-session limit (reconnect),
# each copy byte for byte below our Received: line (well formed), the 450
# recipient held, the 550 one bounced (the DSN parsed with Python's email
# package). The peer-specific expectations are arguments.
#
#   pc_run D PEERDIR ADDR PORT UTF8 DSN
#     UTF8: yes (the peer offers SMTPUTF8: delivered) or no (bounced 5.6.7)
#     DSN:  yes (the peer offers DSN: NOTIFY passed on) or no (we send a
#           "relayed" DSN)
#   Afterwards PC_OUT holds the flush's output.
#   peer_files DIR        the files the peer delivered into DIR/mail

peer_files() {
  find "$1/mail/new" "$1/mail/cur" -type f 2>/dev/null
}

pc_msg() {   # FILE TAG TO [BODY-LINE...]
  local f=$1 tag=$2 to=$3 l; shift 3
  { printf 'From: Sender <s@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n' "$to" "$tag"
    printf 'Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n\r\n' "$tag"
    for l in "$@"; do printf '%s\r\n' "$l"; done; } >"$f"
}

pc_put() {   # ID FILE RCPT...  (FL_PUT_SENDER may be set by the caller); prints the spool id
  local id=$1 f=$2; shift 2
  "$SPOOL_PUT" -a 192.0.2.7 -n mail.example.org -h helo.example.org -q 4XyZ12abc \
    "$D/spool" acme "${FL_PUT_SENDER:-s@example.org}" "$@" <"$f" || fail "hold $id"
}

# pc_clone SPOOLID MSGDIR N - N more held messages like SPOOLID, tagged
# b001..bN instead of b000 (Subject, Message-ID, body), oldest after it:
# written straight into new/ without a sync each (the milter's durable
# path is not what this test is about; 150 fsyncs would take 10 s), and
# the same messages as files in MSGDIR to compare with
pc_clone() {
  python3 - "$D/spool/acme/new" "$1" "$2" "$3" <<'PY'
import os, sys
new, sid, msgdir, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = open(os.path.join(new, sid), 'rb').read()
body = open(os.path.join(msgdir, 'b000'), 'rb').read()
sec, rest = sid.split('.', 1)
host = rest.split('.', 1)[1]
for i in range(1, n + 1):
    tag = b'b%03d' % i
    name = '%d.M%06dP%dQ%d.%s' % (int(sec) + 1, i, os.getpid(), i, host)
    with open(os.path.join(new, name), 'wb') as f:
        f.write(data.replace(b'b000', tag))
    with open(os.path.join(msgdir, tag.decode()), 'wb') as f:
        f.write(body.replace(b'b000', tag))
PY
}

pc_run() {
  local D=$1 P=$2 addr=$3 port=$4 utf8=$5 dsn=$6 i rcpts=() m=$WORK/pc
  mkdir -p "$m"
  fl_customers "$D" <<SRC || { fail "compile customers"; return 1; }
customer acme
    domain virt.dom
    delivery host $addr:$port
    tls may
SRC
  # 1. 8-bit  2. SMTPUTF8  3. 10 MiB  4. 100 recipients  5. DSN  6. 550  7. 450
  pc_msg "$m/m8" m8 a8@virt.dom "$(printf '8-bit: caf\xc3\xa9 \xe9t\xe9 \xff')" ".dot line" "end"
  FL_PUT_SENDER='s@example.org|BODY=8BITMIME' pc_put m8 "$m/m8" a8@virt.dom >/dev/null
  pc_msg "$m/mu" "$(printf 'Gr\xc3\xbc\xc3\x9fe')" "$(printf 'j\xc3\xb6rg@virt.dom')" "$(printf 'UTF-8 \xe2\x9c\x93')"
  FL_PUT_SENDER='s@example.org|BODY=8BITMIME SMTPUTF8' pc_put mu "$m/mu" "$(printf 'j\xc3\xb6rg@virt.dom')" >/dev/null
  pc_msg "$m/mbig" mbig big@virt.dom
  python3 -c 'import sys
line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
sys.stdout.buffer.write(line * (10 * 1024 * 1024 // len(line)))' >>"$m/mbig"
  pc_put mbig "$m/mbig" big@virt.dom >/dev/null
  for i in $(seq -w 1 100); do rcpts+=("r$i@virt.dom"); done
  pc_msg "$m/m100" m100 list@virt.dom "to 100 recipients"
  pc_put m100 "$m/m100" "${rcpts[@]}" >/dev/null
  pc_msg "$m/mdsn" mdsn dsn@virt.dom "with DSN parameters"
  FL_PUT_SENDER='s@example.org|ENVID=env+2B1 RET=HDRS' \
    pc_put mdsn "$m/mdsn" 'dsn@virt.dom|NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dsn@virt.dom' >/dev/null
  pc_msg "$m/m550" m550 ok550@virt.dom "one recipient refused"
  pc_put m550 "$m/m550" ok550@virt.dom r550@virt.dom >/dev/null
  pc_msg "$m/m450" m450 ok450@virt.dom "one recipient deferred"
  pc_put m450 "$m/m450" ok450@virt.dom r450@virt.dom >/dev/null
  pc_msg "$m/b000" b000 bulk@virt.dom "bulk message b000"
  pc_clone "$(pc_put b000 "$m/b000" bulk@virt.dom)" "$m" 149 || fail "clone the bulk messages"
  chown -R nobody "$D/spool"
  [ "$(fl_held "$D" acme)" = 157 ] && pass "157 messages held" || fail "157 held" "$(fl_held "$D" acme)"

  local want_d=256 want_b=1
  [ "$utf8" = no ] && want_d=255 want_b=2
  run fl_ctl "$D" flush acme --wait
  PC_OUT=$OUT
  expect_line "one flush: delivered $want_d, deferred 1, bounced $want_b" out \
    "delivered $want_d, deferred 1, bounced $want_b"
  [ "$(fl_held "$D" acme)" = 1 ] && pass "only the 450 recipient's message stays held" ||
    fail "one message held" "$(fl_held "$D" acme)"
  grep -rqx 'X-Autoturn-Rcpt: <r450@virt.dom>' "$D/spool/acme/new" &&
    ! grep -rq '^X-Autoturn-Rcpt: <ok450@virt.dom>' "$D/spool/acme/new" &&
    pass "450: the held copy keeps r450 only" || fail "450: envelope rewritten" "$(cat "$D"/spool/acme/new/*)"

  # every delivered copy: the recipients, our Received: line, the bytes
  # (the peer delivers to its maildir after its 250: wait for the count)
  local res
  for i in $(seq 1 600); do
    [ "$(peer_files "$P" | wc -l)" -ge "$want_d" ] && break
    sleep 0.1
  done
  res=$(python3 "$SRCDIR/tests/integration/lib/peercheck.py" "$P" "$m" 2>&1)
  [ "$res" = "ok $want_d" ] &&
    pass "every copy byte-exact below a well-formed Received: line, each recipient once ($res)" ||
    fail "delivered copies" "$res"
  python3 "$SRCDIR/tests/integration/lib/peercheck.py" --has "$P" "$(printf 'j\xc3\xb6rg@virt.dom')" \
    >/dev/null && got_utf8=yes || got_utf8=no
  [ "$got_utf8" = "$utf8" ] && pass "SMTPUTF8 message delivered: $utf8" ||
    fail "SMTPUTF8 delivered: $got_utf8, want $utf8"

  # DSNs (the fake sendmail recorded them), parsed with the email package
  res=$(python3 "$SRCDIR/tests/integration/lib/peercheck.py" --dsn "$D/dsn" failed r550@virt.dom 5.1.1 \
        'smtp; 550 5.1.1' "$addr")
  [ "$res" = ok ] && pass "550: one failure DSN, Status 5.1.1, the server's reply" || fail "550 DSN" "$res"
  if [ "$utf8" = no ]; then
    res=$(python3 "$SRCDIR/tests/integration/lib/peercheck.py" --dsn "$D/dsn" failed \
          "$(printf 'j\xc3\xb6rg@virt.dom')" 5.6.7 'X-Autoturn; message needs SMTPUTF8' "$addr")
    [ "$res" = ok ] && pass "SMTPUTF8 to a server without it: bounced at once, 5.6.7" ||
      fail "SMTPUTF8 DSN" "$res"
  fi
  res=$(python3 "$SRCDIR/tests/integration/lib/peercheck.py" --dsn "$D/dsn" relayed dsn@virt.dom 2.0.0 \
        'smtp; 250' "$addr")
  if [ "$dsn" = no ]; then
    [ "$res" = ok ] && pass "NOTIFY=SUCCESS, server without DSN: relayed DSN (RFC 3461 5.2.2)" ||
      fail "relayed DSN" "$res"
  else
    [ "$res" = "no such DSN" ] && pass "NOTIFY=SUCCESS, server with DSN: passed on, no relayed DSN of ours" ||
      fail "no relayed DSN when the server has DSN" "$res"
  fi
  local ndsn=$want_b
  [ "$dsn" = no ] && ndsn=$((ndsn + 1))
  [ "$(ls "$D/dsn" | grep -c '\.msg$')" = "$ndsn" ] && pass "$ndsn DSN(s) sent, no other" ||
    fail "$ndsn DSN(s)" "$(ls "$D/dsn")"
}
