#!/bin/bash
# SPDX-License-Identifier: ISC
# t_odmr_abuse.sh - the ODMR service under wrong, hostile or TLS use:
# STARTTLS + AUTH PLAIN with swaks (and PLAIN refused without TLS), the
# whole ATRN turnaround kept inside TLS (lib/odmr_client.py plays the
# customer: fetchmail has no STARTTLS for ODMR), commands out of order
# (502/503/530/504/501), over-long and NUL lines, too many errors, the
# command timeout, max_auth_failures per connection, the delay after a
# failed AUTH, 20 failed AUTH attempts from one address (the address is
# refused, another address is not), and sessions per address.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"
. "$SRCDIR/tests/integration/lib/odmr.sh"

D=$(fl_dir)
trap 'fl_stop; for p in ${IDLE:-}; do kill $p 2>/dev/null; done; rm -rf "$D" "$WORK"' EXIT
OD_PORT=$(free_port)
od_setup "$D" "$OD_PORT" "auth_delay = 0s" "timeout = 5m" "max_auth_failures = 3" \
  "address_failures = 10" "address_block = 1h" "max_sessions_per_address = 3" \
  "account_failures = 1000" ||
  { fail "set-up"; finish; exit 1; }
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }

# has LABEL TEXT WANT... : every WANT is a line of TEXT
has() {
  local label=$1 text=$2 w; shift 2
  for w in "$@"; do
    printf '%s\n' "$text" | grep -qxF -- "$w" || { fail "$label" "no line: $w" "$text"; return; }
  done
  pass "$label"
}
# restart KEY OLD NEW - change an odmr setting the ODMR front and its
# sessions take only at start (they are forked before any reload)
restart() {
  fl_stop
  sed -i "s/ $1 = $2\$/ $1 = $3/" "$D/autoturn.conf"
  fl_start "$D" || { fail "flusher restarts ($1 = $3)" "$(tail -5 "$D/flusher.log")"; finish; exit 1; }
}
# reload KEY OLD NEW - change an odmr setting, SIGHUP, wait for the reload
reload() {
  local n
  n=$(grep -c 'reloaded' "$D/flusher.log")
  sed -i "s/ $1 = $2\$/ $1 = $3/" "$D/autoturn.conf"
  kill -HUP "$FL_PID"
  wait_for 30 eval "[ \"\$(grep -c reloaded '$D/flusher.log')\" -gt $n ]" ||
    fail "reload ($1 = $3)" "$(tail -3 "$D/flusher.log")"
}
C() { od_client --source "${SRC_ADDR:-127.0.0.2}" ${SINK:+--sink "$SINK"} 127.0.0.1 "$OD_PORT" "$@" 2>&1; }
# after a turnaround the session may still hold acme's lock when the client is done
acme_free() { wait_for 30 eval "! fl_locked '$D' acme"; }

# --- 1. STARTTLS + AUTH PLAIN with swaks ---
run swaks --server 127.0.0.1 --port "$OD_PORT" --local-interface 127.0.0.4 --tls \
  --auth PLAIN --auth-user acme --auth-password secret1 --quit-after AUTH --helo client.test
expect "swaks: STARTTLS, then AUTH PLAIN succeeds" 0 "<~  235 2.7.0 Authentication successful"
printf '%s\n' "$OUT" | grep -q "<~  250-AUTH CRAM-MD5 PLAIN" &&
  pass "after TLS, EHLO offers AUTH CRAM-MD5 PLAIN" || fail "AUTH after TLS" "$OUT"
grep -q "client=\[127.0.0.4\]:[0-9]*: TLS established (TLSv1.[23]" "$D/flusher.log" &&
  grep -q "client=\[127.0.0.4\]:[0-9]*, customer=acme: authenticated (PLAIN, TLS)" "$D/flusher.log" &&
  pass "TLS and AUTH PLAIN logged" || fail "TLS log" "$(grep odmr "$D/flusher.log" | tail -4)"
run swaks --server 127.0.0.1 --port "$OD_PORT" --local-interface 127.0.0.4 --tls \
  --auth PLAIN --auth-user acme --auth-password nope --quit-after AUTH --helo client.test
expect "swaks: wrong PLAIN password -> 535" 28 "<~* 535 5.7.8 Authentication credentials invalid"
grep -q "customer=acme: AUTH PLAIN failed: wrong password (1 of 3)" "$D/flusher.log" &&
  pass "PLAIN failure logged" || fail "PLAIN failure log" "$(grep odmr "$D/flusher.log" | tail -2)"
out=$(C "EHLO c.test" "PLAIN acme secret1" QUIT)
has "AUTH PLAIN without TLS: 538, and EHLO offers only CRAM-MD5 and STARTTLS" "$out" \
  "> 250-AUTH CRAM-MD5" "> 250-STARTTLS" \
  "> 538 5.7.11 Encryption required for requested authentication mechanism"

# --- 2. the turnaround stays inside TLS ---
od_msg "$WORK/t1" t1 "over TLS"
fl_put "$D" acme "$WORK/t1" a@virt.dom
mkdir -p "$WORK/tls-sink"
out=$(SINK="$WORK/tls-sink" C "EHLO c.test" STARTTLS "EHLO c.test" "PLAIN acme secret1" \
  "ATRN virt.dom" TURN)
has "STARTTLS, AUTH PLAIN, ATRN: 250 and the session goes on in TLS" "$out" \
  "tls: TLSv1.3" "> 235 2.7.0 Authentication successful" "> 250 OK now reversing the connection" \
  "< EHLO flusher.autoturn.test" "< RCPT TO:<a@virt.dom>" "< QUIT" "turn: 1 message(s) received"
grep -q "^Subject: t1" "$WORK/tls-sink/1.eml" 2>/dev/null && [ "$(fl_held "$D" acme)" = 0 ] &&
  pass "message delivered over TLS, spool empty" || fail "TLS delivery" "$(ls "$WORK/tls-sink")"
acme_free

# --- 2b. ATRN without an argument: every held domain of the customer ---
od_msg "$WORK/t2" t2 "all domains"
fl_put "$D" acme "$WORK/t2" a@virt.dom b@other.dom
fl_put "$D" beta "$WORK/t2" x@beta.example
mkdir -p "$WORK/all-sink"
out=$(SINK="$WORK/all-sink" C "EHLO c.test" "CRAM acme secret1" ATRN TURN)
has "ATRN alone: both of acme's domains, one transaction" "$out" \
  "> 250 OK now reversing the connection" "< RCPT TO:<a@virt.dom>" "< RCPT TO:<b@other.dom>" \
  "turn: 1 message(s) received"
[ "$(fl_held "$D" acme)" = 0 ] && [ "$(fl_held "$D" beta)" = 1 ] &&
  pass "acme's spool empty, beta's untouched" || fail "spools" "$(fl_held "$D" acme) $(fl_held "$D" beta)"
acme_free

# --- 3. commands out of order ---
out=$(C "MAIL FROM:<a@b.c>" "ATRN virt.dom" "AUTH CRAM-MD5" "HELO c.test" "EHLO c.test" \
  "ATRN virt.dom" "AUTH LOGIN" "AUTH" NOOP RSET QUIT)
has "out of order: 502 / 503 / 530 / 504 / 501, NOOP and RSET fine, QUIT 221" "$out" \
  "> 502 5.5.1 Command not implemented" "> 503 5.5.1 Send EHLO first" \
  "> 530 5.7.0 Authentication required" "> 504 5.5.4 Unrecognized authentication type" \
  "> 501 5.5.4 Syntax: AUTH mechanism" "> 250 2.0.0 OK" "> 221 2.0.0 Bye"
out=$(C "EHLO c.test" "CRAM acme secret1" "MAIL FROM:<a@b.c>" "RCPT TO:<x@virt.dom>" DATA \
  "ETRN virt.dom" "HELO c.test" QUIT)
[ "$(printf '%s\n' "$out" | grep -c '^> 502 5.5.1 Command not implemented')" = 5 ] &&
  printf '%s\n' "$out" | grep -qxF "> 221 2.0.0 Bye" &&
  pass "MAIL, RCPT, DATA, ETRN, HELO before ATRN (even after AUTH): 502 each" || fail "502 count" "$out"
grep -q "odmr: client=\[127.0.0.2\]:[0-9]*: auth refused: 503 5.5.1 Send EHLO first" "$D/flusher.log" &&
  grep -q "odmr: client=\[127.0.0.2\]:[0-9]*: mail refused: 502 5.5.1 Command not implemented" "$D/flusher.log" &&
  grep -q "odmr: client=\[127.0.0.2\]:[0-9]*, customer=acme: etrn refused: 502 5.5.1 Command not implemented" "$D/flusher.log" &&
  pass "each refusal logged with the address (and the customer once known)" ||
  fail "refusal log" "$(grep refused "$D/flusher.log" | head -5)"
grep -q "client=\[127.0.0.2\]:[0-9]*: ATRN without AUTH" "$D/flusher.log" &&
  pass "ATRN without AUTH logged with the address" || fail "530 log"
out=$(C "EHLO c.test" "CRAM acme secret1" "AUTH CRAM-MD5" "STARTTLS" QUIT)
has "after AUTH: a second AUTH and STARTTLS are 503" "$out" "> 235 2.7.0 Authentication successful" \
  "> 503 5.5.1 Already authenticated" "> 503 5.5.1 TLS already active or too late for STARTTLS"
out=$(C "EHLO c.test" "AUTH CRAM-MD5" "*" QUIT)
has "AUTH aborted with *: 501" "$out" "> 501 5.7.0 Authentication aborted"
out=$(C "EHLO c.test" "CRAM acme secret1" "ATRN bad..domain" "ATRN virt.dom,,x" QUIT)
has "a malformed domain list: 501" "$out" "> 501 5.5.4 Syntax: ATRN [domain[,domain...]]"

# --- 4. over-long lines, NUL bytes, too many errors ---
long=$(head -c 5000 /dev/zero | tr '\0' 'A')
out=$(C "RAW:NOOP $long" NOOP "RAW:NO\\x00OP" QUIT)
has "over-long line: 500 and the session goes on; NUL: 500" "$out" "> 500 5.5.2 Line too long" \
  "> 250 2.0.0 OK" "> 500 5.5.2 NUL byte in command" "> 221 2.0.0 Bye"
out=$(C X1 X2 X3 X4 X5 X6 X7 X8 X9 X10 NOOP QUIT)
has "10 bad commands: 421, connection closed" "$out" "> 421 4.7.0 Too many errors, closing connection" "closed"
grep -q "client=\[127.0.0.2\]:[0-9]*: too many errors; disconnecting" "$D/flusher.log" &&
  pass "too many errors logged" || fail "errors log"

# --- 5. the command timeout (3 s for this one session: a short timeout
# for every session would make a client that a loaded machine holds up
# for 3 s fail where it should not) ---
restart timeout 5m 3s
out=$(C "EHLO c.test" "SILENT:60")
has "silent client: 421 4.4.2 after the timeout" "$out" "> 421 4.4.2 Timeout, closing connection"
grep -q "client=\[127.0.0.2\]:[0-9]*: timeout reading from" "$D/flusher.log" &&
  pass "timeout logged" || fail "timeout log" "$(grep odmr "$D/flusher.log" | tail -3)"

restart timeout 3s 5m

# --- 6. per connection: max_auth_failures (3), then 421 ---
out=$(SRC_ADDR=127.0.0.5 C "EHLO c.test" "CRAM acme x1" "CRAM acme x2" "CRAM acme x3" NOOP)
has "3 failed AUTH on one connection: 535, 535, then 421" "$out" \
  "> 535 5.7.8 Authentication credentials invalid" \
  "> 421 4.7.0 Too many authentication failures, closing connection" "closed"

# --- 7. 20 failed AUTH attempts from one address: refused after 10 ---
# The daemon counts a failure when the session reports it (a pipe it
# reads in its event loop): the block after the 10th is waited for, so
# that session 11 cannot overtake that report.
codes=""
for i in $(seq 1 20); do
  [ "$i" = 11 ] && wait_log "$D/flusher.log" \
    "odmr: client=\[127.0.0.6\]: 10 failed AUTH attempts; this address is refused for 3600s"
  out=$(SRC_ADDR=127.0.0.6 C "EHLO c.test" "CRAM acme wrong$i" QUIT)
  codes="$codes $(printf '%s\n' "$out" | head -1 | cut -c3-5)"
done
want=" 220 220 220 220 220 220 220 220 220 220 421 421 421 421 421 421 421 421 421 421"
[ "$codes" = "$want" ] && pass "20 failures from 127.0.0.6: sessions 11-20 refused at once" ||
  fail "throttle" "got:$codes" "want:$want"
out=$(SRC_ADDR=127.0.0.6 C "EHLO c.test" "CRAM acme secret1")
has "even the right password is refused now (421 before any AUTH)" "$out" \
  "> 421 4.7.0 Too many failed authentications from your address, try again later"
grep -q "odmr: client=\[127.0.0.6\]: 10 failed AUTH attempts; this address is refused for 3600s" "$D/flusher.log" &&
  pass "the block is logged with the address" || fail "block log" "$(grep 127.0.0.6 "$D/flusher.log" | tail -3)"
grep -q "odmr: client=\[127.0.0.6\]:[0-9]*: refused: too many failed AUTH attempts from this address" "$D/flusher.log" &&
  pass "refused connections logged" || fail "refusal log"
out=$(SRC_ADDR=127.0.0.7 C "EHLO c.test" "CRAM acme secret1" QUIT)
has "another address still authenticates" "$out" "> 235 2.7.0 Authentication successful"

# --- 8. the delay after a failed AUTH (auth_delay x failures) ---
reload auth_delay 0s 1s
t0=$(date +%s%N)
out=$(SRC_ADDR=127.0.0.8 C "EHLO c.test" "CRAM acme bad" QUIT)
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
printf '%s\n' "$out" | grep -qxF "> 535 5.7.8 Authentication credentials invalid" && [ "$ms" -ge 1000 ] &&
  pass "auth_delay 1s: the 535 comes after at least 1 s (${ms} ms)" || fail "delay" "$ms ms" "$out"

# --- 9. sessions per address (3) ---
# three silent sessions stay open (the timeout is 5m, their clients wait up
# to 2 minutes) until the 4th has been refused
IDLE=""
for i in 1 2 3; do
  SRC_ADDR=127.0.0.9 od_client --source 127.0.0.9 127.0.0.1 "$OD_PORT" "SILENT:120" >/dev/null 2>&1 &
  IDLE="$IDLE $!"
done
three() { [ "$(grep -c 'client=\[127.0.0.9\]:[0-9]*: connected' "$D/flusher.log")" -ge 3 ]; }
wait_for 30 three || fail "three sessions from 127.0.0.9" "$(grep 127.0.0.9 "$D/flusher.log")"
out=$(SRC_ADDR=127.0.0.9 C NOOP)
has "a 4th session from one address: 421" "$out" \
  "> 421 4.7.0 Too many connections from your address, try again later"
for p in $IDLE; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; IDLE=""

fl_stop
finish
