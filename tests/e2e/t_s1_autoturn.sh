#!/bin/bash
# SPDX-License-Identifier: ISC
# t_s1_autoturn.sh - DESIGN.md S1, AutoTURN for a customer on a static
# address, end to end through a real private Postfix, autoturn-milter,
# autoturn-policyd and autoturn-flusher (tests/e2e/lib.sh). Mail for
# virt.dom sent into Postfix is held (autoturnctl queue lists it, Postfix's
# queue is empty, the customer's server got nothing); a stranger's connect
# changes nothing; acme's registered address 127.0.0.2 connects to Postfix
# (EHLO, QUIT), the policy service notices it and the flusher delivers
# everything to acme's server (smtp-sink on 127.0.0.2), byte for byte, and
# the spool is empty. Second half: more mail is held, and a connect-and-close
# on the flusher's Hello port from 127.0.0.2 delivers it.
. "$SRCDIR/tests/e2e/lib.sh"
e2e_init
e2e_config
e2e_customers <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom .virt.dom
    address 127.0.0.2
    delivery connecting-ip
    port $PA
    tls none
    trigger connect etrn
    relay yes
SRC
e2e_up || { finish; exit 1; }
e2e_sink ACME 127.0.0.2 || { finish; exit 1; }
# the stranger 127.0.0.9 runs a server too: it must never get anything
e2e_sink STRANGER 127.0.0.9 || { finish; exit 1; }

# hi SRC PORT - connect from SRC, EHLO, QUIT; prints the two reply codes
hi() {
  python3 - "$1" "$2" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[2]), source_address=(sys.argv[1], 0), timeout=30)
code, _ = s.ehlo("customer.test")
qcode, _ = s.docmd("QUIT")
print(code, qcode)
PY
}
# hello SRC - connect to the Hello port from SRC; "closed" if the server
# closed at once without a byte
hello() {
  python3 - "$1" "$HELLO" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(10)
s.bind((sys.argv[1], 0))
s.connect(("127.0.0.1", int(sys.argv[2])))
print("closed" if s.recv(100) == b"" else "data")
PY
}
acme_sunk() { [ "$(e2e_count "$D/sink-ACME")" = "$1" ]; }
# idle - no flush running (a rescan starts in the same step as the end of
# the flush before it, so "0 running" after a flush done line is final)
idle() { e2e_ctl status | grep -q '^autoturn-flusher: 0 of at most 20 flushes running'; }
done_with() { grep -q "customer=acme: flush done: delivered=$1, deferred=0, bounced=0$" "$D/flusher.log"; }

# --- 1. three messages for virt.dom (one 8-bit and dot-stuffed, one also for
# the Internet) are held; the Internet's recipient gets its copy ---
e2e_msg "$WORK/m1" m1
{
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: 8bit\r\n folded\r\n'
  printf 'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m2@example.org>\r\n'
  printf 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
  printf 'caf\xe9 \xff\x80\r\n.dot line\r\n..two dots\r\n.\r\n\r\n  trailing blanks  \r\nend\r\n'
} >"$WORK/m2"
e2e_msg "$WORK/m3" m3
run e2e_send 127.0.0.1 "$WORK/m1" a@virt.dom b@sub.virt.dom
expect "m1 for a@virt.dom and b@sub.virt.dom accepted" 0 "DATA 250 2.0.0 Ok: queued as"
MT_MAIL_OPTS="BODY=8BITMIME" run e2e_send 127.0.0.1 "$WORK/m2" a@virt.dom
expect "m2 (8-bit) accepted" 0 "DATA 250 2.0.0 Ok: queued as"
run e2e_send 127.0.0.1 "$WORK/m3" c@virt.dom x@example.net
expect "m3 for c@virt.dom and x@example.net accepted" 0 "DATA 250 2.0.0 Ok: queued as"
q3=$(printf '%s\n' "$OUT" | mt_qid)

pf_wait_log "$D/pf" "$q3: removed" 60 || fail "postfix done with m3" "$(pf_log "$D/pf" | tail)"
n=$(grep -c ': orig_queue_id=[0-9A-Za-z]*, customer=acme, from=<s@example.org>, nrcpt=[12], size=[0-9]*, status=held$' "$D/milter.log")
[ "$n" = 3 ] && pass "milter: three status=held lines" || fail "milter: three held" "$(cat "$D/milter.log")"
[ "$(pf_queue_count "$D/pf")" = 0 ] && pass "Postfix's queue is empty" || fail "postfix queue empty" "$(postqueue -c "$D/pf/conf" -p)"
pf_log "$D/pf" | grep -q "$q3: to=<x@example.net>, relay=127.0.0.1\[127.0.0.1\]:$SINK, .*status=sent" &&
  ! pf_log "$D/pf" | grep -q 'to=<[a-c]@\(sub\.\)\?virt.dom>, relay' &&
  pass "Postfix delivered only x@example.net (to the Internet's sink)" ||
  fail "postfix deliveries" "$(pf_log "$D/pf" | grep relay=)"
grep -q '^X-Rcpt-Args: <x@example.net>' "$D"/sink-net/* 2>/dev/null && [ "$(e2e_count "$D/sink-net")" = 1 ] &&
  pass "the Internet's sink got m3 for x@example.net only" || fail "internet sink" "$(cat "$D"/sink-net/* 2>/dev/null)"

run e2e_ctl queue
expect "autoturnctl queue: acme holds 3 messages" 0 "-- 3 messages, "
printf '%s\n' "$OUT" | grep -Eq '^acme +3 +[0-9]+ +[0-9]+s +0$' && pass "autoturnctl queue: the acme line" ||
  fail "queue acme line" "$OUT"
run e2e_ctl queue acme
expect "autoturnctl queue acme" 0 "-- acme: 3 messages, "
[ "$(printf '%s\n' "$OUT" | grep -c '<s@example.org>')" = 3 ] &&
  printf '%s\n' "$OUT" | grep -q '^ *<b@sub.virt.dom>$' && printf '%s\n' "$OUT" | grep -q '^ *<c@virt.dom>$' &&
  pass "autoturnctl queue acme: three entries with their recipients" || fail "queue acme entries" "$OUT"
# smtp-sink keeps no CR, so the bytes are compared here, in the spool
s2=$(grep -l '^Message-ID: <m2@example.org>' $(mt_spool_files "$D" acme))
[ -n "$s2" ] && cmp "$WORK/m2" <(mt_body "$s2") >"$WORK/cmp" 2>&1 &&
  pass "held m2 is the message sent to Postfix, byte for byte" || fail "m2 byte-exact in the spool" "$(cat "$WORK/cmp")"
[ "$(e2e_count "$D/sink-ACME")" = 0 ] && pass "nothing at acme's server yet" || fail "acme sink empty" "$(ls "$D/sink-ACME")"

# --- 2. a stranger connects: nothing; then acme connects: delivered ---
run hi 127.0.0.9 "$SMTP"
expect_line "stranger 127.0.0.9: EHLO 250, QUIT 221" out "250 221"
run hi 127.0.0.2 "$SMTP"
expect_line "acme from 127.0.0.2: EHLO 250, QUIT 221" out "250 221"
if e2e_wait 60 acme_sunk 3 && e2e_until 60 0 e2e_held acme && e2e_wait 30 done_with 4 && e2e_wait 30 idle; then
  pass "acme's connect: its server received 3 messages, spool drained"
else
  fail "acme's connect: delivered" "sink: $(ls "$D/sink-ACME")" "held: $(e2e_held acme)" "$(cat "$D/flusher.log")"
fi
pf_log "$D/pf" | grep -q 'connect from unknown\[127.0.0.2\]' && pass "Postfix saw the customer's session" ||
  fail "postfix saw 127.0.0.2" "$(pf_log "$D/pf" | tail -5)"
[ "$(grep -c 'acme: flush requested, to=127.0.0.2, reason=connect$' "$D/policyd.log")" = 1 ] &&
  ! grep -v 'action=DUNNO, reason=notice, client_address=127.0.0.9,' "$D/policyd.log" | grep -q '127.0.0.9' &&
  pass "policyd: one notice for 127.0.0.2, none for the stranger" || fail "policyd notices" "$(cat "$D/policyd.log")"
# The milter may notice the same connect (Postfix sometimes passes a
# session that ends before MAIL FROM to the milter, despite
# autoturn-milter(8)); its request then finds the flush running and makes
# it run once more, finding nothing: a second flush is allowed, but every
# flush is toward 127.0.0.2 for reason=connect and only one delivers.
n=$(grep -c 'milter.*customer=acme, client=127.0.0.2: connect: flush requested$' "$D/milter.log")
[ "$n" -le 1 ] && ! grep -q 'client=127.0.0.9' "$D/milter.log" &&
  pass "milter: at most one notice for 127.0.0.2 ($n), none for the stranger" || fail "milter notices" "$(cat "$D/milter.log")"
n=$(grep -c 'customer=acme: flush started (pid [0-9]*, reason=connect, to=127.0.0.2)$' "$D/flusher.log")
[ "$n" -ge 1 ] && [ "$n" -le 2 ] && [ "$(grep -c 'flush started' "$D/flusher.log")" = "$n" ] &&
  [ "$(grep -c 'customer=acme: flush done: delivered=0, deferred=0, bounced=0$' "$D/flusher.log")" = $((n - 1)) ] &&
  pass "flusher: flushes only toward 127.0.0.2 for reason=connect; one delivers" || fail "connect flushes" "$(grep flush "$D/flusher.log")"
conn_flushes=$n
n=$(grep -c ": to=<[abc]@\(sub\.\)\?virt.dom>\(, orig_queue_id=[^,]*\)\?, customer=acme, relay=127.0.0.2\[127.0.0.2\]:$PA, delay=[0-9]*, dsn=[0-9.]*, status=sent (250 2.0.0 Ok)$" "$D/flusher.log")
[ "$n" = 4 ] && pass "flusher: four status=sent lines (a, b, a, c) to 127.0.0.2:$PA" ||
  fail "four sent lines" "$(grep status= "$D/flusher.log")"
grep -q 'customer=acme: flush done: delivered=4, deferred=0, bounced=0$' "$D/flusher.log" &&
  pass "flusher: flush done: delivered=4, deferred=0, bounced=0" || fail "flush done line" "$(grep 'flush done' "$D/flusher.log")"
# one grep follows a message: Postfix's queue id of m3 is in the milter's
# hold line, which names the spool id; the flusher's line has both
hold=$(grep ": orig_queue_id=$q3, customer=acme, from=<s@example.org>, nrcpt=1, size=[0-9]*, status=held$" "$D/milter.log")
sid=$(printf '%s\n' "$hold" | sed -n 's/^.*autoturn-milter\[[0-9]*\]: \([^ :]*\): orig_queue_id=.*/\1/p')
if [ -n "$sid" ] && grep -Eq "autoturn-flusher\[[0-9]+\]: $sid: to=<c@virt.dom>, orig_queue_id=$q3, customer=acme, relay=127\.0\.0\.2\[127\.0\.0\.2\]:$PA, delay=[0-9]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok\)$" "$D/flusher.log" &&
  [ "$(cat "$D/milter.log" "$D/flusher.log" | grep -c "$q3")" = 2 ]; then
  pass "log shape: Postfix's $q3 -> the milter's hold of $sid -> the flusher's status=sent with dsn=2.0.0"
else
  fail "log shape: one grep follows m3" "hold: $hold" "$(grep -F "${sid:-$q3}" "$D/flusher.log")"
fi
e2e_wait 30 grep -q "autoturn-policyd\[[0-9]*\]: action=DUNNO, reason=notice, client_address=127.0.0.2, protocol_state=CONNECT$" "$D/policyd.log" &&
  pass "policyd: the decision on acme's connect notice at info, one line" ||
  fail "policyd decision line" "$(grep 'action=' "$D/policyd.log" | head -5)"
f1=$(grep -l '^Message-ID: <m1@example.org>' "$D"/sink-ACME/* 2>/dev/null)
[ -n "$f1" ] && [ "$(grep -c '^X-Rcpt-Args:' "$f1")" = 2 ] && grep -qx 'X-Rcpt-Args: <a@virt.dom>' "$f1" &&
  grep -qx 'X-Rcpt-Args: <b@sub.virt.dom>' "$f1" && grep -qx 'X-Mail-Args: <s@example.org>' "$f1" &&
  pass "m1 arrived once for a@virt.dom and b@sub.virt.dom, from <s@example.org>" || fail "m1 envelope" "$(head -8 "$f1")"
f2=$(grep -l '^Message-ID: <m2@example.org>' "$D"/sink-ACME/* 2>/dev/null)
if [ -n "$f2" ] && e2e_sink_same "$WORK/m2" "$f2" >"$WORK/cmp" 2>&1; then
  pass "m2 at acme's server is the message sent to Postfix (as smtp-sink stores it)"
else
  fail "m2 at acme's server" "$(cat "$WORK/cmp")" "$(e2e_sink_body "$f2" | od -c | head -12)"
fi
grep -qx 'X-Mail-Args: <s@example.org> BODY=8BITMIME' "$f2" && pass "m2 kept BODY=8BITMIME" ||
  fail "m2 BODY=8BITMIME" "$(grep X-Mail "$f2")"
[ "$(find "$D/spool/acme" -type f ! -name '.*' | wc -l)" = 0 ] && pass "acme's spool is empty (new, cur, tmp)" ||
  fail "spool empty" "$(find "$D/spool/acme" -type f)"
run e2e_ctl queue
expect "autoturnctl queue: nothing held" 0 "-- 0 messages, 0 bytes held for 0 customers"
[ "$(e2e_count "$D/sink-STRANGER")" = 0 ] && pass "the stranger's server got nothing" ||
  fail "stranger got nothing" "$(ls "$D/sink-STRANGER")"

# --- 3. the Hello port: more mail held, connect and close from 127.0.0.2 ---
for t in h1 h2; do
  e2e_msg "$WORK/$t" "$t"
  run e2e_send 127.0.0.1 "$WORK/$t" a@virt.dom
  expect "$t accepted" 0 "DATA 250 2.0.0 Ok: queued as"
done
e2e_until 60 2 e2e_held acme && pass "h1, h2 held" || fail "h1, h2 held" "$(e2e_held acme)"
run hello 127.0.0.9
expect_line "Hello port, stranger: closed at once" out closed
run hello 127.0.0.2
expect_line "Hello port, acme: closed at once" out closed
if e2e_wait 60 acme_sunk 5 && e2e_until 60 0 e2e_held acme && e2e_wait 30 done_with 2 && e2e_wait 30 idle; then
  pass "Hello from 127.0.0.2: 2 more messages at acme's server, spool drained"
else
  fail "hello: delivered" "sink: $(ls "$D/sink-ACME")" "held: $(e2e_held acme)" "$(cat "$D/flusher.log")"
fi
grep -q 'customer=acme: hello from 127.0.0.2: flush requested$' "$D/flusher.log" &&
  grep -q 'customer=acme: flush started (pid [0-9]*, reason=hello, to=127.0.0.2)$' "$D/flusher.log" &&
  grep -q 'customer=acme: flush done: delivered=2, deferred=0, bounced=0$' "$D/flusher.log" &&
  pass "flusher log: hello, flush started reason=hello, delivered=2" || fail "hello log" "$(grep -i 'hello\|flush' "$D/flusher.log")"
grep -q 'hello from 127.0.0.9: not a registered address; closed' "$D/flusher.log" &&
  [ "$(grep -c 'flush started' "$D/flusher.log")" = $((conn_flushes + 1)) ] &&
  pass "Hello from the stranger: logged and ignored" || fail "hello stranger" "$(grep hello "$D/flusher.log")"
for t in h1 h2; do
  f=$(grep -l "^Message-ID: <$t@example.org>" "$D"/sink-ACME/* 2>/dev/null)
  [ -n "$f" ] && e2e_sink_same "$WORK/$t" "$f" && pass "$t intact at acme's server" || fail "$t intact" "$f"
done
[ "$(e2e_count "$D/sink-STRANGER")" = 0 ] && [ "$(e2e_count "$D/sink-net")" = 1 ] &&
  pass "nothing went to the stranger or the Internet" || fail "no stray deliveries" "$(ls "$D"/sink-*)"

e2e_check
finish
