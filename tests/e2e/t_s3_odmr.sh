#!/bin/bash
# SPDX-License-Identifier: ISC
# t_s3_odmr.sh - DESIGN.md S3, ODMR (RFC 2645) end to end: mail for the
# dynamic customer's domain is sent into a real private Postfix, held by
# autoturn-milter (Postfix's queue empty, autoturnctl queue lists it); the
# customer, on no fixed address, runs Debian's fetchmail --protocol ODMR
# against the flusher's ODMR port with its password: AUTH CRAM-MD5, ATRN,
# turnaround, and fetchmail relays everything to the customer's own server
# (an smtp-sink), byte for byte; the spool is empty. A second message sent
# meanwhile waits for the next poll; a wrong password moves nothing.
. "$SRCDIR/tests/e2e/lib.sh"
. "$SRCDIR/tests/integration/lib/odmr.sh"
od_user || { fail "user autoturn-odmr"; finish; exit 1; }
e2e_init
OD_PORT=$(free_port)
E2E_FLUSHER="odmr {
        enable = true
        listen = { \"inet:127.0.0.1:$OD_PORT\" }
        auth_delay = 0s
    }"
e2e_config
SECRET=$(printf 'dial-up 2645' | "$AUTOTURNCTL" secret)
e2e_customers <<SRC || { fail "compile customers"; finish; exit 1; }
customer roamer
    domain virt.dom
    delivery host 127.0.0.9:25
    tls none
    trigger atrn
    secret $SECRET
SRC
e2e_up || { finish; exit 1; }
e2e_sink HOME 127.0.0.3 || { finish; exit 1; }
home_got() { e2e_count "$D/sink-HOME"; }

# --- 1. held through Postfix ---
e2e_msg "$WORK/m1" m1
e2e_msg "$WORK/m2" m2
run e2e_send 127.0.0.1 "$WORK/m1" a@virt.dom
expect "Postfix accepts mail for virt.dom" 0 "DATA 250"
run e2e_send 127.0.0.1 "$WORK/m2" b@virt.dom
e2e_until 20 2 e2e_held roamer && pass "both messages held for roamer" || fail "held" "$(e2e_held roamer)"
e2e_wait 20 test "$(pf_queue_count "$D/pf")" = 0 && pass "Postfix's queue is empty" ||
  fail "postfix queue" "$(pf_queue_count "$D/pf")"
run e2e_ctl queue roamer
expect "autoturnctl queue lists them" 0 "-- roamer: 2 messages"
[ "$(home_got)" = 0 ] && pass "nothing reached the customer yet" || fail "early delivery"

# --- 2. a wrong password moves nothing ---
od_fetch "$D" roamer "dial-up 2646" virt.dom "$PA"
rc=$?
[ $rc = 128 ] && [ "$(e2e_held roamer)" = 2 ] && [ "$(home_got)" = 0 ] &&
  pass "wrong password: refused (fetchmail 128), still held" || fail "wrong password" "rc $rc" "$FM_OUT"

# --- 3. the customer polls: delivered over the ODMR connection ---
# fetchmail relays to the customer's server: smtphost is the HOME sink, here
# on 127.0.0.3:PA (od_fetch uses 127.0.0.1; the sink listens on .3)
home=$D/fetchmail-roamer
printf 'poll 127.0.0.1 protocol ODMR service %s user "roamer" password "dial-up 2645" fetchdomains virt.dom smtphost 127.0.0.3/%s\n' \
  "$OD_PORT" "$PA" >"$home/rc"
chmod 0600 "$home/rc"
out=$(FETCHMAILHOME=$home timeout 120 fetchmail -v --pidfile "$home/pid" -f "$home/rc" 2>&1)
rc=$?
[ $rc = 0 ] && printf '%s\n' "$out" | grep -q "ODMR< 250 OK now reversing the connection" &&
  pass "fetchmail: AUTH, ATRN, turnaround, exit 0" || fail "fetchmail" "rc $rc" "$out"
[ "$(home_got)" = 2 ] && [ "$(e2e_held roamer)" = 0 ] &&
  pass "both messages at the customer's server; spool empty" || fail "delivered" "$(home_got) $(e2e_held roamer)"
same=0
for f in "$D"/sink-HOME/*; do
  grep -q "Subject: m1" "$f" && e2e_sink_same "$WORK/m1" "$f" && same=$((same + 1))
  grep -q "Subject: m2" "$f" && e2e_sink_same "$WORK/m2" "$f" && same=$((same + 1))
done
[ $same = 2 ] && pass "byte for byte as sent into Postfix" || fail "content" "$same of 2"
# the session logs "flush done" after it closed the connection: fetchmail
# may have exited before that
grep -Eq ": to=<a@virt.dom>(, orig_queue_id=[^,]*)?, customer=roamer, relay=\[127.0.0.1\]:[0-9]+, delay=[0-9]+, dsn=[0-9.]+, status=sent \(250 " "$D/flusher.log" &&
  e2e_wait 30 grep -q "customer=roamer: flush done: delivered=2, deferred=0, bounced=0" "$D/flusher.log" &&
  pass "the flusher logs each recipient and the flush" || fail "log" "$(grep roamer "$D/flusher.log")"

# --- 4. the next poll: nothing held -> 453, exit 0 ---
e2e_wait 30 eval "! fl_locked '$D' roamer"       # the session above has let go
out=$(FETCHMAILHOME=$home timeout 120 fetchmail -v --pidfile "$home/pid" -f "$home/rc" 2>&1)
rc=$?
[ $rc = 0 ] && printf '%s\n' "$out" | grep -q "ODMR< 453 You have no mail" &&
  pass "next poll: 453 You have no mail" || fail "453" "rc $rc" "$out"

e2e_check
finish
