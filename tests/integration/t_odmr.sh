#!/bin/bash
# SPDX-License-Identifier: ISC
# t_odmr.sh - the ODMR service (RFC 2645) of autoturn-flusher with Debian's
# fetchmail as the customer's real client (--protocol ODMR, smtphost = an
# smtp-sink on loopback): held mail arrives byte-exact and leaves the spool;
# only the domains asked for are delivered (a message with recipients in two
# domains keeps the other one); a wrong password is refused (535, fetchmail
# exit 128 - see MTA-NOTES) and nothing moves; a domain of another customer
# in the list -> 450 and nothing is sent (exit 4); a customer without the
# atrn trigger cannot authenticate; nothing held -> 453 (exit 0); a delivery
# already running for the customer -> 451 (exit 8); fetchmail's smtphost
# down -> everything stays held.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"
. "$SRCDIR/tests/integration/lib/odmr.sh"

D=$(fl_dir)
trap 'fl_stop; sink_stop A; kill "${LOCKER:-}" 2>/dev/null; rm -rf "$D" "$WORK"' EXIT
OD_PORT=$(free_port) PA=$(free_port)
od_setup "$D" "$OD_PORT" "auth_delay = 0s" || { fail "set-up"; finish; exit 1; }
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }
grep -q "odmr: listening on inet:127.0.0.1:$OD_PORT (STARTTLS available)" "$D/flusher.log" &&
  pass "ODMR listener announced" || fail "listener line" "$(cat "$D/flusher.log")"
sink_start A "127.0.0.1:$PA" "$D/sinkA" || { fail "sink" "$(cat "$D/sinkA.log")"; finish; exit 1; }

sink_n() { find "$D/sinkA" -type f 2>/dev/null | wc -l; }
held() { fl_held "$D" "$1"; }

# --- 1. byte-exact delivery; only the domains asked for ---
long=$(head -c 3000 /dev/zero | tr '\0' 'x')
od_msg "$WORK/m1" m1 "plain line"
od_msg "$WORK/m2" m2 ".leading dot" ".." "." "end"
od_msg "$WORK/m3" m3 "$(printf '8-bit: \xe9t\xe9 \xff')"
od_msg "$WORK/m4" m4 "$long"
od_msg "$WORK/m5" m5 "two domains"
for i in 1 2 3 4; do fl_put "$D" acme "$WORK/m$i" a@virt.dom; done
fl_put "$D" acme "$WORK/m5" a@virt.dom b@other.dom
od_msg "$WORK/m6" m6 "other domain only"
fl_put "$D" acme "$WORK/m6" c@other.dom
od_fetch "$D" acme secret1 virt.dom "$PA"
rc=$?
[ $rc = 0 ] && pass "fetchmail exit 0 after the turnaround" || fail "fetchmail rc $rc" "$FM_OUT"
printf '%s\n' "$FM_OUT" | grep -q "ODMR< 250 OK now reversing the connection" &&
  pass "ATRN answered 250 OK now reversing the connection" || fail "ATRN 250" "$FM_OUT"
printf '%s\n' "$FM_OUT" | grep -q "SMTP< 250-AUTH CRAM-MD5" && printf '%s\n' "$FM_OUT" | grep -q "SMTP< 250 ATRN" &&
  printf '%s\n' "$FM_OUT" | grep -q "SMTP< 250-STARTTLS" &&
  pass "EHLO advertises AUTH CRAM-MD5, STARTTLS and ATRN" || fail "EHLO keywords" "$FM_OUT"
[ "$(sink_n)" = 5 ] && pass "5 messages arrived through fetchmail" || fail "sink count" "$(sink_n)"
bad=$(python3 - "$D/sinkA" "$WORK" <<'PY'
import os, sys
sink, work = sys.argv[1], sys.argv[2]
got = {}
for f in os.listdir(sink):
    data = open(os.path.join(sink, f), "rb").read()
    # smtp-sink -c prepends X-* and Received: lines; the message starts at From:
    i = data.find(b"From: <s@example.org>")
    mid = data[data.find(b"Message-ID: <") + 13:].split(b"@", 1)[0].decode()
    got[mid] = (data[i:], data)
for m in ["m1", "m2", "m3", "m4", "m5"]:
    # smtp-sink stores LF line ends and one more LF at the end (as in t_flusher_basic)
    want = open(os.path.join(work, m), "rb").read().replace(b"\r\n", b"\n") + b"\n"
    if m not in got:
        print(m, "missing")
    elif got[m][0] != want:
        print(m, "differs")
if "m5" in got and (b"X-Rcpt-Args: <a@virt.dom>" not in got["m5"][1] or b"other.dom" in got["m5"][1].split(b"From: <s@")[0]):
    print("m5 recipients wrong")
if "m6" in got:
    print("m6 (other.dom only) was delivered")
PY
)
[ -z "$bad" ] && pass "byte-exact; the two-domain message went only to a@virt.dom" || fail "content" "$bad"
[ "$(held acme)" = 2 ] && pass "2 messages stay held (m6, and m5 for b@other.dom)" || fail "held" "$(held acme)"
run fl_ctl "$D" queue acme
printf '%s\n' "$OUT" | grep -q "b@other.dom" && ! printf '%s\n' "$OUT" | grep -q "a@virt.dom" &&
  pass "the kept copy of m5 is for b@other.dom only" || fail "kept envelope" "$OUT"
grep -q "customer=acme: flush of 7 message(s) (reason=atrn)\|customer=acme: flush of 6 message(s) (reason=atrn)" "$D/flusher.log" &&
  grep -Eq ": to=<a@virt.dom>(, orig_queue_id=[^,]*)?, customer=acme, relay=\[127.0.0.1\]:[0-9]+, delay=[0-9]+, dsn=[0-9.]+, status=sent \(250 " "$D/flusher.log" &&
  pass "the flush engine logged the ATRN delivery" || fail "engine log" "$(grep customer=acme "$D/flusher.log")"

# --- 2. the rest with both domains ---
od_fetch "$D" acme secret1 virt.dom,other.dom "$PA"
rc=$?
[ $rc = 0 ] && [ "$(held acme)" = 0 ] && [ "$(sink_n)" = 7 ] &&
  pass "ATRN virt.dom,other.dom delivers the rest; spool empty" || fail "second fetch" "rc $rc held $(held acme) sink $(sink_n)" "$FM_OUT"

# --- 3. nothing held: 453, fetchmail exit 0 ---
od_fetch "$D" acme secret1 virt.dom "$PA"
rc=$?
[ $rc = 0 ] && printf '%s\n' "$FM_OUT" | grep -q "ODMR< 453 You have no mail" &&
  pass "nothing held: 453 You have no mail, fetchmail exit 0" || fail "453" "rc $rc" "$FM_OUT"

# --- 4. wrong password: 535, nothing moves ---
fl_put "$D" acme "$WORK/m1" a@virt.dom
od_fetch "$D" acme wrongpass virt.dom "$PA"
rc=$?
[ $rc = 128 ] && printf '%s\n' "$FM_OUT" | grep -q "SMTP< 535 5.7.8 Authentication credentials invalid" &&
  pass "wrong password: 535 5.7.8, fetchmail exit 128" || fail "wrong password" "rc $rc" "$FM_OUT"
grep -q "odmr: client=\[127.0.0.1\]:[0-9]*, customer=acme: AUTH CRAM-MD5 failed: wrong secret (1 of 3)" "$D/flusher.log" &&
  pass "the failure is logged with address and customer" || fail "auth log" "$(grep odmr "$D/flusher.log" | tail -3)"
! grep -q "wrongpass" "$D/flusher.log" && pass "no password in the log" || fail "password logged"
[ "$(held acme)" = 1 ] && [ "$(sink_n)" = 7 ] && pass "nothing delivered after a failed AUTH" || fail "moved" "$(held acme) $(sink_n)"

# --- 5. another customer's domain in the list: 450, nothing sent ---
od_fetch "$D" acme secret1 virt.dom,beta.example "$PA"
rc=$?
[ $rc = 4 ] && printf '%s\n' "$FM_OUT" | grep -q "ODMR< 450 4.7.1 Access denied to you" &&
  pass "a domain of another customer: 450 4.7.1, fetchmail exit 4" || fail "450" "rc $rc" "$FM_OUT"
grep -q "customer=acme: ATRN refused: beta.example is not a domain of this customer" "$D/flusher.log" &&
  pass "450 logged with customer and domain" || fail "450 log" "$(grep odmr "$D/flusher.log" | tail -3)"
[ "$(held acme)" = 1 ] && [ "$(sink_n)" = 7 ] && pass "nothing sent after 450" || fail "moved" "$(held acme) $(sink_n)"
od_fetch "$D" acme secret1 unknown.example "$PA"
rc=$?
[ $rc = 4 ] && pass "a domain nobody holds: 450 too" || fail "unknown domain" "rc $rc" "$FM_OUT"

# --- 6. a customer whose triggers lack atrn cannot authenticate ---
od_fetch "$D" gamma secret3 gamma.example "$PA"
rc=$?
[ $rc = 128 ] && grep -q "customer=gamma: AUTH CRAM-MD5 failed: the customer's triggers do not include atrn" "$D/flusher.log" &&
  pass "no atrn trigger: AUTH refused, reason logged" || fail "gamma" "rc $rc" "$FM_OUT"

# --- 7. a delivery already running for the customer: 451 ---
python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(60)' "$D/spool/acme/.lock" "$WORK/locked" &
LOCKER=$!
wait_for 30 test -e "$WORK/locked" || fail "a process holds acme's lock"
od_fetch "$D" acme secret1 virt.dom "$PA"
rc=$?
kill $LOCKER; wait $LOCKER 2>/dev/null; LOCKER=
[ $rc = 8 ] && printf '%s\n' "$FM_OUT" | grep -q "ODMR< 451 4.4.0 A delivery for this customer is already running; try again later" &&
  pass "delivery running: 451 4.4.0 with a reason, fetchmail exit 8" || fail "451" "rc $rc" "$FM_OUT"
[ "$(held acme)" = 1 ] && pass "still held" || fail "held" "$(held acme)"

# --- 8. fetchmail's smtphost down: the mail stays held ---
DOWN=$(free_port)
od_fetch "$D" acme secret1 virt.dom "$DOWN"
rc=$?
printf '%s\n' "$FM_OUT" | grep -q "ODMR< 250 OK now reversing the connection" &&
  [ "$(held acme)" = 1 ] && pass "smtphost down: turnaround, then nothing lost (rc $rc)" ||
  fail "smtphost down" "rc $rc held $(held acme)" "$FM_OUT"
wait_log "$D/flusher.log" "customer=acme: flush done: delivered=0, deferred=1, bounced=0" &&
  pass "the failed turnaround is logged as deferred" || fail "deferred log" "$(grep customer=acme "$D/flusher.log" | tail -4)"
od_fetch "$D" acme secret1 virt.dom "$PA"
[ "$(held acme)" = 0 ] && [ "$(sink_n)" = 8 ] && pass "delivered once the smtphost is back" || fail "after" "$(held acme) $(sink_n)"

fl_stop
finish
