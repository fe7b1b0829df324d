#!/bin/bash
# SPDX-License-Identifier: ISC
# t_peer_exim.sh - autoturn-flusher delivering to Exim 4.96 as the
# customer's server (unpacked privately, tests/integration/lib/peers.sh):
# the cases of lib/peer_cases.sh in one flush (Exim offers PIPELINING,
# CHUNKING, SMTPUTF8 and no DSN: NOTIFY=SUCCESS gets our "relayed" DSN),
# past a per-connection limit of 120 messages (Exim's 421: the flush
# reconnects), and BDAT really used (Exim's reception log).
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"
. "$SRCDIR/tests/integration/lib/peers.sh"
. "$SRCDIR/tests/integration/lib/peer_cases.sh"

D=$(fl_dir)
X=$D/exim
trap 'fl_stop; peer_stop "$X"; [ -n "${KEEP:-}" ] || rm -rf "$D" "$WORK"' EXIT
PX=$(free_port)
mkdir -p "$X"
# a per-connection limit below the 157 messages held (Exim's default is 1000)
ex_start "$X" 127.0.0.2 "$PX" "smtp_accept_max_per_connection = 120" || { fail "Exim starts" "$(cat "$X/daemon.out" 2>/dev/null)"; finish; exit 1; }
pass "Exim 4.96 on 127.0.0.2:$PX"
fl_config "$D" "retry_interval = 0s"
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }

pc_run "$D" "$X" 127.0.0.2 "$PX" yes no

# the per-connection limit: Exim says 421 to MAIL; the flush reconnects
grep -q "customer=acme: relay=127.0.0.2\[127.0.0.2\]:$PX: session ended after 120 message(s) (.*421 .*); reconnecting (1 of 5)" \
  "$D/flusher.log" && pass "Exim's limit of 120 messages per connection: reconnected (1 of 5)" ||
  fail "reconnect after Exim's 421" "$(grep -E 'reconnect|session ended|421' "$D/flusher.log" | head -5)"

# CHUNKING: Exim logs K on a message received with BDAT
grep -q '<= s@example.org .* K S=' "$X/log/mainlog" && pass "CHUNKING used (Exim logs K)" ||
  fail "CHUNKING used" "$(grep '<=' "$X/log/mainlog" | head -3)"

fl_stop
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$D/flusher.log" &&
  fail "no sanitizer reports" "$(grep -E -A5 'Sanitizer|runtime error' "$D/flusher.log" | head -20)" ||
  pass "no sanitizer reports in the flusher's log"
finish
