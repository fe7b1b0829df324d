#!/bin/bash
# SPDX-License-Identifier: ISC
# t_odmr_guard.sh - the ODMR service against exhaustion and guessing, and
# its privilege separation (autoturn-flusher(8), SECURITY):
#   1. the front and every session before AUTH run as odmr.user
#      (autoturn-odmr), with no new privileges; that user cannot read the
#      spool; the front says it is confined by Landlock;
#   2. idle unauthenticated connections from many addresses cannot lock a
#      customer out: past max_preauth_sessions the oldest is closed (421)
#      and fetchmail as the customer still gets its mail;
#   3. an unknown account and a wrong password get the same answer;
#   4. 20 guesses for one account from 4 addresses: 5 are checked (535),
#      the 15 others get 454 without a check, logged; the customer from an
#      address it used before still authenticates, a new address waits;
#   5. a session that does not authenticate within preauth_timeout: 421.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"
. "$SRCDIR/tests/integration/lib/odmr.sh"

D=$(fl_dir)
IDLE=""
trap 'fl_stop; sink_stop A; for p in $IDLE; do kill $p 2>/dev/null; done; rm -rf "$D" "$WORK"' EXIT
OD_PORT=$(free_port) PA=$(free_port)
od_setup "$D" "$OD_PORT" "auth_delay = 0s" "max_sessions = 10" "max_preauth_sessions = 4" \
  "max_sessions_per_address = 3" "address_failures = 100" "account_failures = 5" \
  "account_delay = 1h" "account_delay_max = 1h" || { fail "set-up"; finish; exit 1; }
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }
sink_start A "127.0.0.1:$PA" "$D/sinkA" || { fail "sink"; finish; exit 1; }

C() { od_client --source "$1" 127.0.0.1 "$OD_PORT" "${@:2}" 2>&1; }
# wait_log REGEX [N]: poll until the flusher's log has N (default 1) matching lines
wait_log() {
  local i
  for i in $(seq 1 300); do
    [ "$(grep -c -- "$1" "$D/flusher.log")" -ge "${2:-1}" ] && return 0
    sleep 0.1
  done
  return 1
}
# idle ADDR: an unauthenticated connection that says nothing (killed at the end)
idle() {
  od_client --source "$1" 127.0.0.1 "$OD_PORT" "SILENT:120" >"$WORK/idle.$1.$RANDOM" 2>&1 &
  IDLE="$IDLE $!"
}

# --- 1. who runs where ---
wait_log "odmr: front process [0-9]* runs as autoturn-odmr, confined by Landlock" &&
  pass "the front runs as autoturn-odmr, confined by Landlock" ||
  fail "front identity" "$(grep 'front process' "$D/flusher.log")"
front=$(sed -n 's/.*odmr: front process \([0-9]*\) runs as.*/\1/p' "$D/flusher.log" | tail -1)
odmr_uid=$(id -u autoturn-odmr)
idle 127.0.0.40
wait_log 'client=\[127.0.0.40\]:[0-9]*: connected (session [0-9]*)' ||
  fail "idle session connected" "$(tail -3 "$D/flusher.log")"
sess=$(sed -n 's/.*client=\[127.0.0.40\]:[0-9]*: connected (session \([0-9]*\)).*/\1/p' "$D/flusher.log" | tail -1)
for p in "$front" "$sess"; do
  uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$p/status" 2>/dev/null)
  nnp=$(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
  [ "$uid" = "$odmr_uid $odmr_uid $odmr_uid $odmr_uid" ] && [ "$nnp" = 1 ] &&
    pass "process $p (front, then a session before AUTH): uid autoturn-odmr everywhere, NoNewPrivs" ||
    fail "process $p identity" "uid: $uid (want $odmr_uid)" "NoNewPrivs: $nnp"
done
od_msg "$WORK/s1" s1 "spool probe"
fl_put "$D" acme "$WORK/s1" a@virt.dom
f=$(find "$D/spool/acme/new" -type f | head -1)
run runuser -u autoturn-odmr -- cat "$f"
expect "autoturn-odmr cannot read a held message" 1 "" "Permission denied"

# --- 2. idle strangers cannot lock the customer out ---
for a in 127.0.0.20 127.0.0.21 127.0.0.22; do idle $a; idle $a; idle $a; done
wait_log "session [0-9]* closed before AUTH to make room (max_preauth_sessions 4 reached)" 6 &&
  pass "9 idle connections with max_preauth_sessions 4: the oldest are closed" ||
  fail "evictions" "$(grep -c 'to make room' "$D/flusher.log")" "$(tail -5 "$D/flusher.log")"
for i in $(seq 1 300); do
  grep -qx "> 421 4.7.0 Too many unauthenticated connections, try again later" "$WORK"/idle.* && break
  sleep 0.1
done
grep -qx "> 421 4.7.0 Too many unauthenticated connections, try again later" "$WORK"/idle.* &&
  pass "a closed idle connection is told why (421 4.7.0)" || fail "421 to the evicted" "$(cat "$WORK"/idle.*)"
od_fetch "$D" acme secret1 virt.dom "$PA"
rc=$?
[ $rc = 0 ] && [ "$(find "$D/sinkA" -type f | wc -l)" = 1 ] && [ "$(fl_held "$D" acme)" = 0 ] &&
  pass "fetchmail as acme among idle strangers: authenticated, mail delivered" ||
  fail "customer locked out" "rc $rc" "$FM_OUT"
for p in $IDLE; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; IDLE=""

# --- 3. an unknown account looks like a wrong password ---
out1=$(C 127.0.0.50 "EHLO c.test" "CRAM nosuch secret1" QUIT)
out2=$(C 127.0.0.51 "EHLO c.test" "CRAM beta wrong" QUIT)
a1=$(printf '%s\n' "$out1" | grep '^> 5')
a2=$(printf '%s\n' "$out2" | grep '^> 5')
[ "$a1" = "> 535 5.7.8 Authentication credentials invalid" ] && [ "$a1" = "$a2" ] &&
  pass "unknown account and wrong secret: the same 535" || fail "same answer" "$out1" "$out2"

# --- 4. 20 guesses for one account from 4 addresses ---
out=$(C 127.0.0.30 "EHLO c.test" "CRAM acme secret1" QUIT)
printf '%s\n' "$out" | grep -qxF "> 235 2.7.0 Authentication successful" &&
  pass "acme authenticates from 127.0.0.30 (now a known address)" || fail "first AUTH" "$out"
codes=""
for i in $(seq 1 20); do
  a=127.0.0.$((31 + (i - 1) % 4))
  out=$(C "$a" "EHLO c.test" "CRAM acme guess$i" QUIT)
  codes="$codes $(printf '%s\n' "$out" | grep -E '^> (535|454)' | cut -c3-5)"
done
want=" 535 535 535 535 535 454 454 454 454 454 454 454 454 454 454 454 454 454 454 454"
[ "$codes" = "$want" ] && pass "20 guesses from 4 addresses: 5 checked (535), 15 refused unchecked (454)" ||
  fail "account throttle" "got:$codes" "want:$want"
wait_log "odmr: customer=acme: 5 failed AUTH attempts; the next attempt from an address that never authenticated for it is taken in 3600s" &&
  pass "the throttle is logged" || fail "throttle log" "$(grep 'customer=acme' "$D/flusher.log" | tail -3)"
wait_log "customer=acme: AUTH refused: the account is throttled after 5 failures" 15 &&
  pass "each unchecked attempt is logged" || fail "refusal log" "$(grep -c 'account is throttled' "$D/flusher.log")"
out=$(C 127.0.0.30 "EHLO c.test" "CRAM acme secret1" QUIT)
printf '%s\n' "$out" | grep -qxF "> 235 2.7.0 Authentication successful" &&
  pass "the customer's known address is not slowed down" || fail "known address" "$out"
out=$(C 127.0.0.38 "EHLO c.test" "CRAM acme secret1" QUIT)
printf '%s\n' "$out" | grep -qxF "> 454 4.7.0 Temporary authentication failure, try again later" &&
  pass "throttled again: a new address waits even with the right password" || fail "new address" "$out"

# --- 5. preauth_timeout ---
fl_stop
sed -i 's/    max_sessions = 10/    max_sessions = 10\n    preauth_timeout = 2s/' "$D/autoturn.conf"
fl_start "$D" || { fail "flusher restarts" "$(tail -5 "$D/flusher.log")"; finish; exit 1; }
out=$(C 127.0.0.60 "EHLO c.test" "SILENT:60")
printf '%s\n' "$out" | grep -qxF "> 421 4.7.0 Authentication timeout, closing connection" &&
  pass "no AUTH within preauth_timeout: 421 4.7.0" || fail "preauth timeout" "$out"
wait_log "client=\[127.0.0.60\]:[0-9]*: no successful AUTH within preauth_timeout (2s); disconnecting" &&
  pass "preauth timeout logged" || fail "preauth log" "$(tail -3 "$D/flusher.log")"

grep -E "ERROR: AddressSanitizer|runtime error" "$D/flusher.log" && fail "sanitizers quiet" || pass "sanitizers quiet"
fl_stop
finish
