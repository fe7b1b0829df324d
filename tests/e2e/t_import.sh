#!/bin/bash
# SPDX-License-Identifier: ISC
# t_import.sh - "autoturnctl import" end to end, one recipe after the
# other into one running site (tests/e2e/lib.sh: a private Postfix,
# autoturn-milter, -policyd, -flusher with ODMR on; the customer source
# starts empty). The inputs are the fixtures of tests/data/import.
#   - qmail-autoturn: the held mail of 127.0.0.2 (plain, dot lines, a
#     bounce with an empty Return-Path, 8-bit, 1.5 MB) is imported and
#     the qmail maildir emptied; 127.0.0.2 connects to Postfix (AutoTURN)
#     and its server receives every message byte for byte as it was below
#     the two qmail lines, from the sender of Return-Path to the recipient
#     of Delivered-To without the prefix;
#   - qsmtpd: the customer's fetchmail, run with the fetchmailrc the import
#     wrote (the password from control/passwords, our stored secret on the
#     server side), fetches its held mail with ODMR, byte for byte;
#   - zmailer-routes: mail for etrn.example sent into Postfix is held for
#     the imported customer and ETRN etrn.example (from a stranger)
#     delivers it to the route's host, 127.0.0.3, never to the asker;
#   - vpopmail-roaming: the live open-smtp login of 127.0.0.6 becomes a
#     grant (through autoturn-policyd's control socket) that relays through
#     Postfix and ends when vpopmail's clearopensmtp would have dropped the
#     line; an expired login relays nothing.
. "$SRCDIR/tests/e2e/lib.sh"
e2e_init
OD_PORT=$(free_port)
E2E_FLUSHER="odmr {
        enable = true
        listen = { \"inet:127.0.0.1:$OD_PORT\" }
        auth_delay = 0s
    }"
E2E_RELAY="virt.dom, .virt.dom, other.example, incoming.dom.ain, etrn.example, .etrn.example"
e2e_config
e2e_customers </dev/null || { fail "compile the empty source"; finish; exit 1; }
e2e_up || { finish; exit 1; }
S=$D/old
cp -a "$SRCDIR/tests/data/import/." "$S"
sed -i "s|@ROOT@|$S/qsmtpd|" "$S/qsmtpd/control/passwords"
Q2=$S/qmail/autoturn/127.0.0.2
python3 - "$Q2/new/1765000600.4300.mx1.isp.example" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"Return-Path: <big@example.org>\nDelivered-To: autoturn-127.0.0.2-c@virt.dom\n"
            b"From: <big@example.org>\nSubject: large\nMessage-ID: <large@example.org>\n\n")
    for i in range(22000):
        f.write(b"%06d ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\n" % i)
PY
cp -a "$S" "$D/orig"
# below - the message of a qmail-local maildir file without its two lines
below() { tail -n +3 "$1" >"$2"; }
# sunk_same SINKDIR ID WANT [imported] - the sink's copy of Message-ID ID
# is WANT (see e2e_sink_same)
sunk_same() {
  local f
  f=$(grep -l "^Message-ID: <$2>" "$1"/* 2>/dev/null | head -1)
  [ -n "$f" ] && e2e_sink_same "$3" "$f" "${4:-}"
}

# --- qmail-autoturn ---
e2e_sink ACME 127.0.0.2 || { finish; exit 1; }
run e2e_ctl import qmail-autoturn --qmail "$S/qmail" --port "$PA" --tls none --max-age 3650d --apply
expect "import qmail-autoturn --apply" 0 "imported 5 messages ("
[ "$(e2e_held 127.0.0.2)" = 4 ] && [ "$(find "$Q2" -type f | wc -l)" = 0 ] &&
  pass "4 messages held for 127.0.0.2, its qmail maildir emptied" || fail "held after import" "$(e2e_held 127.0.0.2)"
run e2e_ctl queue 127.0.0.2
expect "autoturnctl queue lists them" 0 "-- 127.0.0.2: 4 messages"
acme_got() { [ "$(e2e_count "$D/sink-ACME")" = "$1" ]; }
python3 - "$SMTP" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=("127.0.0.2", 0), timeout=30)
s.ehlo("customer.test")
s.quit()
PY
if e2e_wait 90 acme_got 4 && e2e_until 60 0 e2e_held 127.0.0.2; then
  pass "127.0.0.2 connects: its server receives the 4 imported messages, the spool drains"
else
  fail "AutoTURN delivery" "sink: $(ls "$D/sink-ACME")" "$(tail -20 "$D/flusher.log")"
fi
O2=$D/orig/qmail/autoturn/127.0.0.2
for m in "plain@example.org new/1765000000.4242.mx1.isp.example <s@example.org> <a@virt.dom>" \
  "bounce@mx2.example.net cur/1765000100.4243.mx1.isp.example:2,S <> <postmaster@sub.virt.dom>" \
  "eightbit@example.org new/1765000200.4244.mx1.isp.example <s@example.org> <b@virt.dom>" \
  "large@example.org new/1765000600.4300.mx1.isp.example <big@example.org> <c@virt.dom>"; do
  set -- $m
  below "$O2/$2" "$WORK/want"
  f=$(grep -l "^Message-ID: <$1>" "$D"/sink-ACME/* 2>/dev/null | head -1)
  if [ -n "$f" ] && e2e_sink_same "$WORK/want" "$f" imported >"$WORK/cmp" 2>&1 && grep -qx "X-Mail-Args: $3" "$f" &&
    grep -qx "X-Rcpt-Args: $4" "$f" && [ "$(grep -c '^X-Rcpt-Args:' "$f")" = 1 ]; then
    pass "<$1>: byte for byte below the qmail lines, from $3 to $4"
  else
    fail "<$1> at the customer's server" "$(cat "$WORK/cmp")" "$(grep '^X-' "$f" 2>/dev/null)"
  fi
done
grep -q 'customer=127.0.0.2: flush done: delivered=4, deferred=0, bounced=0$' "$D/flusher.log" &&
  pass "flusher: delivered=4" || fail "flush done" "$(grep 'flush done' "$D/flusher.log")"

# --- qsmtpd: fetchmail ODMR with the generated fetchmailrc ---
e2e_sink HOME 127.0.0.5 || { finish; exit 1; }
mkdir -p "$D/rc"
run e2e_ctl import qsmtpd --qmail "$S/qsmtpd" --rc-dir "$D/rc" --odmr-host 127.0.0.1 \
  --odmr-port "$OD_PORT" --smtphost "127.0.0.5/$PA" --max-age 3650d --apply
expect "import qsmtpd --apply" 0 "$D/rc/fetchmailrc.roamer: written (mode 0600): give it to roamer as ~/.fetchmailrc"
e2e_until 20 1 e2e_held roamer && pass "roamer's message held" || fail "roamer held" "$(e2e_held roamer)"
home=$D/fetchmail-roamer
mkdir -p "$home"
out=$(FETCHMAILHOME=$home timeout 120 fetchmail -v --nosyslog --pidfile "$home/pid" -f "$D/rc/fetchmailrc.roamer" 2>&1)
rc=$?
[ $rc = 0 ] && printf '%s\n' "$out" | grep -q "ODMR< 250 OK now reversing the connection" &&
  pass "fetchmail with the generated fetchmailrc: AUTH CRAM-MD5 with the old password, ATRN, exit 0" ||
  fail "fetchmail" "rc $rc" "$out"
below "$D/orig/qsmtpd/home/roamer/Maildir/new/1765000400.5001.mx1.isp.example" "$WORK/want"
e2e_until 20 0 e2e_held roamer && sunk_same "$D/sink-HOME" roamer@example.org "$WORK/want" imported &&
  pass "the customer's server got its message byte for byte; nothing left held" ||
  fail "ODMR delivery" "$(ls "$D/sink-HOME")" "$(e2e_held roamer)"
grep -qx 'X-Rcpt-Args: <joe@incoming.dom.ain>' "$D"/sink-HOME/* && pass "recipient without the qsmtpd prefix" ||
  fail "ODMR recipient" "$(grep '^X-' "$D"/sink-HOME/*)"

# --- zmailer-routes: ETRN ---
e2e_sink ROUTE 127.0.0.3 || { finish; exit 1; }
e2e_sink ASKER 127.0.0.9 || { finish; exit 1; }
run e2e_ctl import zmailer-routes --routes "$S/zmailer/routes" --port "$PA" --tls none --apply
expect "import zmailer-routes --apply" 0 "customers appended"
e2e_msg "$WORK/z1" z1
run e2e_send 127.0.0.1 "$WORK/z1" x@etrn.example
expect "mail for etrn.example accepted" 0 "DATA 250"
e2e_until 30 1 e2e_held 127.0.0.3 && pass "held for the route's customer 127.0.0.3" || fail "z1 held" "$(e2e_held 127.0.0.3)"
run python3 - "$SMTP" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=("127.0.0.9", 0), timeout=30)
s.ehlo("customer.test")
code, text = s.docmd("ETRN", "etrn.example")
print(code, text.decode())
s.quit()
PY
expect "ETRN etrn.example: 250" 0 "250 "
route_got() { [ "$(e2e_count "$D/sink-ROUTE")" = 1 ]; }
e2e_wait 60 route_got && e2e_until 30 0 e2e_held 127.0.0.3 && sunk_same "$D/sink-ROUTE" z1@example.org "$WORK/z1" &&
  pass "ETRN: delivered to the route's host 127.0.0.3, byte for byte" || fail "ETRN delivery" "$(tail "$D/flusher.log")"
[ "$(e2e_count "$D/sink-ASKER")" = 0 ] && pass "nothing went to the asker" || fail "asker got mail"

# --- vpopmail-roaming: grants through Postfix, and their end ---
now=$(date +%s)
mkdir -p "$D/vpop"
cp "$S/vpopmail/tcp.smtp" "$D/vpop/"
printf '127.0.0.6:allow,RELAYCLIENT="",RBLSMTPD=""\t%s\n127.0.0.7:allow,RELAYCLIENT="",RBLSMTPD=""\t%s\n' \
  $((now - 45)) $((now - 90)) >"$D/vpop/open-smtp"
relay() {
  python3 - "$SMTP" "$1" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=(sys.argv[2], 0), timeout=30)
s.ehlo("roamer.test")
s.mail("roamer@virt.dom")
code, text = s.rcpt("x@example.org")
print("RCPT", code)
s.rset()
s.quit()
PY
}
denied() { [ "$(relay "$1")" = "RCPT 554" ]; }
denied 127.0.0.6 && pass "127.0.0.6 may not relay before the import" || fail "relay before" "$(relay 127.0.0.6)"
run e2e_ctl import vpopmail-roaming --vpopmail-etc "$D/vpop" --relay-clear-minutes 1 --apply
expect "import vpopmail-roaming --apply" 0 "1 grants made"
expect_line "the expired login is not granted" err "$D/vpop/open-smtp:2: not imported: the login of 127.0.0.7 at $(date -d @$((now - 90)) '+%Y-%m-%d %H:%M:%S') has expired"
grep -Eq 'grant: ip=127\.0\.0\.6, .*ttl=1?[0-9]s' "$D/policyd.log" &&
  pass "policyd: a grant for what was left of the login's minute" || fail "grant log" "$(grep grant: "$D/policyd.log")"
[ "$(relay 127.0.0.6)" = "RCPT 250" ] && pass "127.0.0.6 relays through Postfix" || fail "grant relays" "$(relay 127.0.0.6)"
denied 127.0.0.7 && pass "127.0.0.7 (expired login) may not relay" || fail "expired relays" "$(relay 127.0.0.7)"
e2e_wait 60 denied 127.0.0.6 && pass "the grant ends with the login's lifetime: denied again" ||
  fail "grant expiry" "$(relay 127.0.0.6)"
[ $(( $(date +%s) - now )) -ge 14 ] && pass "not before the login's minute was over" ||
  fail "grant ended early" "$(( $(date +%s) - now ))s"

e2e_check
finish
