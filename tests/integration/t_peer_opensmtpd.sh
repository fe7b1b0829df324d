#!/bin/bash
# SPDX-License-Identifier: ISC
# t_peer_opensmtpd.sh - autoturn-flusher delivering to OpenSMTPD 6.8 as
# the customer's server (unpacked privately, run in its own mount
# namespace: tests/integration/lib/peers.sh): the cases of
# lib/peer_cases.sh in one flush. OpenSMTPD offers DSN but neither
# PIPELINING, CHUNKING nor SMTPUTF8 (DATA is used; the SMTPUTF8 message
# is bounced at once with 5.6.7), and it answers "452 4.5.3 Too many
# recipients: Too many messages sent" to MAIL after 100 messages in a
# session: the flush reconnects and delivers all 150 bulk messages in
# the same trigger.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"
. "$SRCDIR/tests/integration/lib/peers.sh"
. "$SRCDIR/tests/integration/lib/peer_cases.sh"

D=$(fl_dir)
O=$D/opensmtpd
trap 'fl_stop; peer_stop "$O"; [ -n "${KEEP:-}" ] || rm -rf "$D" "$WORK"' EXIT
PO=$(free_port)
mkdir -p "$O"
os_start "$O" 127.0.0.2 "$PO" || { fail "OpenSMTPD starts" "$(cat "$O/daemon.out" 2>/dev/null)"; finish; exit 1; }
pass "OpenSMTPD 6.8 on 127.0.0.2:$PO"
fl_config "$D" "retry_interval = 0s"
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }

pc_run "$D" "$O" 127.0.0.2 "$PO" no yes

# the per-session limit: one reconnect, logged with OpenSMTPD's reply
grep -q "customer=acme: relay=127.0.0.2\[127.0.0.2\]:$PO: session ended after 100 message(s) (452 4.5.3 Too many recipients: Too many messages sent); reconnecting (1 of 5)" \
  "$D/flusher.log" && pass "452 at MAIL after 100 messages: reconnected (1 of 5)" ||
  fail "reconnect logged" "$(grep -E 'reconnect|session ended|452' "$D/flusher.log" | head -5)"
[ "$(grep -c 'reconnecting' "$D/flusher.log")" = 1 ] && pass "exactly one reconnect" ||
  fail "one reconnect" "$(grep -c reconnecting "$D/flusher.log")"
! grep -q 'status=deferred (452' "$D/flusher.log" && pass "the limit deferred no recipient" ||
  fail "no recipient deferred by the limit" "$(grep 'status=deferred' "$D/flusher.log" | head -3)"

fl_stop
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$D/flusher.log" &&
  fail "no sanitizer reports" "$(grep -E -A5 'Sanitizer|runtime error' "$D/flusher.log" | head -20)" ||
  pass "no sanitizer reports in the flusher's log"
finish
