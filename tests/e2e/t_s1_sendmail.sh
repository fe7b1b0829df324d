#!/bin/bash
# SPDX-License-Identifier: ISC
# t_s1_sendmail.sh - DESIGN.md S1 (AutoTURN) end to end through a real
# Sendmail 8.17, unpacked privately (tests/integration/lib/sendmail.sh)
# and attached to autoturn-milter with the shipped conf/sendmail-autoturn.mc,
# with the real autoturn-flusher (tests/e2e/lib.sh; Sendmail has no policy
# service, so here the milter alone notices the customer). Mail for virt.dom
# is held (autoturnctl queue lists it, Sendmail's queue is empty, the rest
# of a mixed message goes on to the Internet's smtp-sink); a stranger's
# connect changes nothing; acme's address 127.0.0.2 connects (EHLO, QUIT),
# the milter asks the flusher, and everything is delivered to acme's
# server (smtp-sink on 127.0.0.2): byte-exact, spool empty.
. "$SRCDIR/tests/e2e/lib.sh"
. "$SRCDIR/tests/integration/lib/sendmail.sh"
e2e_init
sm_fetch || { fail "sendmail packages fetched and unpacked"; finish; exit 1; }
e2e_config
e2e_customers <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom .virt.dom
    address 127.0.0.2
    delivery connecting-ip
    port $PA
    tls none
    trigger connect etrn
SRC
e2e_daemons || { finish; exit 1; }
e2e_sink ACME 127.0.0.2 || { finish; exit 1; }
e2e_sink STRANGER 127.0.0.9 || { finish; exit 1; }
sed "s|local:/run/autoturn/milter.sock|local:$D/run/milter.sock|" \
  "$SRCDIR/conf/sendmail-autoturn.mc" >"$D/autoturn.mc"
sm_cf "$D/sm" "$SMTP" "$SINK" "$D/autoturn.mc" >"$D/cf.log" 2>&1 || {
  fail "sendmail.cf built" "$(cat "$D/cf.log")"; finish; exit 1; }
sm_start "$D/sm" "$SMTP" >"$D/sm-start.log" 2>&1 || {
  fail "sendmail starts" "$(cat "$D/sm-start.log")"; finish; exit 1; }
pass "Sendmail runs on 127.0.0.1:$SMTP with the milter"

hi() {   # hi SRC - connect from SRC, EHLO, QUIT; prints the two reply codes
  python3 - "$1" "$SMTP" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[2]), source_address=(sys.argv[1], 0), timeout=30)
code, _ = s.ehlo("customer.test")
qcode, _ = s.docmd("QUIT")
print(code, qcode)
PY
}
sm_done() { sm_wait_log "$D/sm" "$1: (done;|to=<[^>]*>, .*stat=discarded)" 60; }
acme_sunk() { e2e_count "$D/sink-ACME"; }

# --- 1. held: two held-only messages and a mixed one ---
e2e_msg "$WORK/m1" m1
{
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: 8bit\r\n folded\r\n'
  printf 'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m2@example.org>\r\n'
  printf 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
  printf 'caf\xe9 \xff\x80\r\n.dot line\r\n..two dots\r\n.\r\n\r\n  trailing blanks  \r\nend\r\n'
} >"$WORK/m2"
e2e_msg "$WORK/m3" m3
for m in "m1 a@virt.dom b@sub.virt.dom" "m2 a@virt.dom" "m3 c@virt.dom x@example.net"; do
  set -- $m
  opts=""; [ "$1" = m2 ] && opts="BODY=8BITMIME"
  MT_MAIL_OPTS=$opts run e2e_send 127.0.0.1 "$WORK/$1" "${@:2}"
  expect "$1 accepted by Sendmail" 0 "DATA 250 2.0.0"
  qid=$(printf '%s\n' "$OUT" | sm_qid)
  sm_done "$qid" || fail "$1: Sendmail finished with $qid" "$(sm_log "$D/sm" | grep "$qid")"
done
n=$(grep -c ': orig_queue_id=[0-9A-Za-z]*, customer=acme, from=<s@example.org>, nrcpt=[12], size=[0-9]*, status=held$' "$D/milter.log")
[ "$n" = 3 ] && pass "milter: three status=held lines" || fail "milter: three held" "$(cat "$D/milter.log")"
e2e_wait 60 grep -q '^X-Rcpt-Args: <x@example.net>' "$D"/sink-net/* 2>/dev/null
[ "$(e2e_count "$D/sink-net")" = 1 ] && [ "$(grep -c '^X-Rcpt-Args:' "$D"/sink-net/*)" = 1 ] &&
  pass "the Internet's sink got m3 for x@example.net only" || fail "internet sink" "$(cat "$D"/sink-net/* 2>/dev/null)"
[ "$(sm_queue_count "$D/sm")" = 0 ] && pass "Sendmail's queue is empty" || fail "sendmail queue empty" "$(ls "$D/sm/queue")"
run e2e_ctl queue
printf '%s\n' "$OUT" | grep -Eqx 'acme +3 +[0-9]+ +[0-9]+s +0' && expect "autoturnctl queue: acme holds 3" 0 "-- 3 messages, " ||
  fail "autoturnctl queue: acme holds 3" "$OUT"
s2=$(grep -l '^Message-ID: <m2@example.org>' $(mt_spool_files "$D" acme))
[ -n "$s2" ] && cmp "$WORK/m2" <(mt_body "$s2") >"$WORK/cmp" 2>&1 &&
  pass "held m2 is the message sent to Sendmail, byte for byte" || fail "m2 byte-exact in the spool" "$(cat "$WORK/cmp")"
[ "$(acme_sunk)" = 0 ] && pass "nothing at acme's server yet" || fail "acme sink empty" "$(ls "$D/sink-ACME")"

# --- 2. a stranger connects, then acme: delivered by the flusher ---
run hi 127.0.0.9
expect_line "stranger 127.0.0.9: EHLO 250, QUIT 221" out "250 221"
run hi 127.0.0.2
expect_line "acme from 127.0.0.2: EHLO 250, QUIT 221" out "250 221"
if e2e_until 60 3 acme_sunk && e2e_until 60 0 e2e_held acme &&
   e2e_wait 30 grep -q 'customer=acme: flush done:' "$D/flusher.log"; then
  pass "acme's connect: its server received 3 messages, spool drained"
else
  fail "acme's connect: delivered" "sink: $(ls "$D/sink-ACME")" "held: $(e2e_held acme)" "$(cat "$D/milter.log" "$D/flusher.log")"
fi
[ "$(grep -c 'customer=acme, client=127.0.0.2: connect: flush requested$' "$D/milter.log")" = 1 ] &&
  ! grep -q 'client=127.0.0.9' "$D/milter.log" &&
  pass "milter: one connect notice for 127.0.0.2, none for the stranger" || fail "milter notices" "$(cat "$D/milter.log")"
[ "$(grep -c 'customer=acme: flush started (pid [0-9]*, reason=connect, to=127.0.0.2)$' "$D/flusher.log")" = 1 ] &&
  [ "$(grep -c 'flush started' "$D/flusher.log")" = 1 ] &&
  pass "flusher: exactly one flush, reason=connect, to=127.0.0.2" || fail "one flush" "$(grep flush "$D/flusher.log")"
n=$(grep -c ": to=<[abc]@\(sub\.\)\?virt.dom>\(, orig_queue_id=[^,]*\)\?, customer=acme, relay=127.0.0.2\[127.0.0.2\]:$PA, delay=[0-9]*, dsn=[0-9.]*, status=sent (250 2.0.0 Ok)$" "$D/flusher.log")
[ "$n" = 4 ] && grep -q 'customer=acme: flush done: delivered=4, deferred=0, bounced=0$' "$D/flusher.log" &&
  pass "flusher: four status=sent lines, flush done: delivered=4" || fail "flusher sent lines" "$(grep 'status=\|done' "$D/flusher.log")"
f1=$(grep -l '^Message-ID: <m1@example.org>' "$D"/sink-ACME/* 2>/dev/null)
[ -n "$f1" ] && [ "$(grep -c '^X-Rcpt-Args:' "$f1")" = 2 ] && grep -qx 'X-Rcpt-Args: <a@virt.dom>' "$f1" &&
  grep -qx 'X-Rcpt-Args: <b@sub.virt.dom>' "$f1" && e2e_sink_same "$WORK/m1" "$f1" &&
  pass "m1 arrived once for a@virt.dom and b@sub.virt.dom, intact" || fail "m1 at acme" "$(cat "$f1")"
f2=$(grep -l '^Message-ID: <m2@example.org>' "$D"/sink-ACME/* 2>/dev/null)
[ -n "$f2" ] && e2e_sink_same "$WORK/m2" "$f2" >"$WORK/cmp" 2>&1 && grep -qx 'X-Mail-Args: <s@example.org> BODY=8BITMIME' "$f2" &&
  pass "m2 at acme's server is the message sent (as smtp-sink stores it), BODY=8BITMIME" ||
  fail "m2 at acme's server" "$(cat "$WORK/cmp")" "$(head -7 "$f2")"
[ "$(find "$D/spool/acme" -type f ! -name '.*' | wc -l)" = 0 ] && pass "acme's spool is empty" ||
  fail "spool empty" "$(find "$D/spool/acme" -type f)"
[ "$(e2e_count "$D/sink-STRANGER")" = 0 ] && pass "the stranger's server got nothing" || fail "stranger got nothing"

e2e_check
finish
