#!/bin/bash
# SPDX-License-Identifier: ISC
# t_policyd_postfix.sh - autoturn-policyd behind a private Postfix on
# loopback, configured like conf/postfix-main.cf.policy. mynetworks is
# only 127.0.0.1, so other 127.0.0.x clients are strangers unless the
# policy service says OK. Checks relay (unknown / registered customer /
# autoturnctl grant and its expiry / SASL login via XCLIENT LOGIN), the
# AutoTURN notice (exactly one flush request per connecting customer) and
# ETRN as the client sees it (python smtplib and fetchmail), with a fake
# flusher (see lib/policyd.sh) recording the flush requests.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/policyd.sh"
chmod 755 "$WORK"   # the daemon runs as nobody
D=$WORK/pd PF=$WORK/pf
P=$(free_port) SMTP=$(free_port)
trap 'pf_stop "$PF"; pd_stop; flusher_stop; rm -rf "$WORK"' EXIT
pd_setup "$D" "$P" "customer acme
    domain virt.dom .virt.dom
    address 127.0.0.2
    trigger connect etrn
    relay yes
customer beta
    domain beta.example
    delivery host 192.0.2.99
    trigger etrn
customer gamma
    domain gamma.example
    trigger etrn" "notify_interval = 1h" || { fail setup; finish; exit; }
flusher_start "$D"
pd_start "$D" || { fail "policyd start" "$(cat "$D/policyd.log")"; finish; exit; }

pf_new "$PF" "$SMTP"
CHECK="inet:127.0.0.1:$P"
pf_set "$PF" "mynetworks = 127.0.0.1/32" \
  "relay_domains = virt.dom beta.example gamma.example" \
  "smtpd_delay_reject = no" \
  "smtpd_authorized_xclient_hosts = 127.0.0.1" \
  "smtpd_client_restrictions = check_policy_service { $CHECK, policy_context=notice, default_action=DUNNO }" \
  "smtpd_relay_restrictions = permit_mynetworks, check_policy_service { $CHECK, default_action=DUNNO }, reject_unauth_destination" \
  "smtpd_etrn_restrictions = check_policy_service { $CHECK, default_action=DUNNO }"
pf_start "$PF" && wait_port 127.0.0.1 "$SMTP" || { fail "postfix start" "$(pf_log "$PF")"; finish; exit; }

# relay FROM-IP [swaks options]: print the reply to RCPT TO:<x@example.org>
relay() {
  local ip=$1; shift
  swaks --server 127.0.0.1 --port "$SMTP" --local-interface "$ip" --from a@example.com \
    --to x@example.org --quit-after RCPT "$@" 2>&1 |
    awk '/^ *[-~*]> RCPT TO/ { r = 1; next } r && /^<[-~*]* +[0-9][0-9][0-9]/ { print $2; exit }'
}
# etrn FROM-IP DOMAIN: python smtplib; prints "CODE TEXT"
etrn() {
  python3 - "$SMTP" "$1" "$2" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=(sys.argv[2], 0), timeout=10)
s.ehlo("client.example")
code, text = s.docmd("ETRN", sys.argv[3])
print(code, text.decode())
s.quit()
PY
}

run relay 127.0.0.9
expect_line "unknown client cannot relay" out "554"
run relay 127.0.0.2
expect_line "registered relay customer can relay" out "250"
# policyd sends its FLUSH without waiting; the fake flusher records it
# when the connection ends
flushes_at_least() { [ "$(flush_count "$D" "$2")" -ge "$1" ]; }
wait_for 30 flushes_at_least 1 '^FLUSH customer=acme to=127.0.0.2 reason=connect source=policyd$'
[ "$(flush_count "$D" '^FLUSH customer=acme to=127.0.0.2 reason=connect source=policyd$')" = 1 ] \
  && pass "customer connecting: one flush request toward it" \
  || fail "customer connecting: one flush request toward it" "$(cat "$D/flush.log")"
run relay 127.0.0.2
sleep 0.3                 # time for a wrong second notice to show (nothing to wait for)
[ "$(flush_count "$D" 'reason=connect')" = 1 ] \
  && pass "second session within notify_interval: still exactly one" \
  || fail "second session within notify_interval: still exactly one" "$(cat "$D/flush.log")"

# (a grant that must still be live when checked is given an hour: a 2 s
# one could end before a loaded machine gets to the check)
run "$AUTOTURNCTL" -c "$D/autoturn.conf" grant 127.0.0.7 --user roamer --ttl 1h
expect "autoturnctl grant" 0 "granted 127.0.0.7 until "
run relay 127.0.0.7
expect_line "granted client can relay" out "250"
run "$AUTOTURNCTL" -c "$D/autoturn.conf" grant 127.0.0.8 --user roamer --ttl 2s
expect "autoturnctl grant --ttl 2s" 0 "granted 127.0.0.8 until "
sleep 3
run relay 127.0.0.8
expect_line "after the 2s TTL it cannot" out "554"

run relay 127.0.0.1 --xclient "ADDR=127.0.0.6 LOGIN=joe@virt.dom"
expect_line "XCLIENT LOGIN session relays" out "250"
run relay 127.0.0.6
expect_line "SASL login created a grant: 127.0.0.6 relays later" out "250"
run "$AUTOTURNCTL" -c "$D/autoturn.conf" grants
expect "grant from the login is tied to customer acme" 0 "joe@virt.dom"
[[ "$OUT" == *"127.0.0.6"*"acme"* ]] && pass "grants lists 127.0.0.6 for acme" \
  || fail "grants lists 127.0.0.6 for acme" "$OUT"

: >"$D/flush.log"
run etrn 127.0.0.2 virt.dom
expect_line "ETRN from the registered address: 250" out "250 Queuing started"
run etrn 127.0.0.9 virt.dom
expect_line "ETRN from a stranger: 450 with our text" out \
  "450 4.7.1 <virt.dom>: Etrn command rejected: ETRN for virt.dom not allowed from this address"
run etrn 127.0.0.9 beta.example
expect_line "ETRN for a fixed-host customer from a stranger: 250" out "250 Queuing started"
run etrn 127.0.0.9 nope.example
expect_line "ETRN for an unknown domain: Postfix's own answer" out "459 <nope.example>: service unavailable"
wait_for 30 flushes_at_least 1 '^FLUSH customer=acme to=127.0.0.2 reason=etrn source=policyd$'
wait_for 30 flushes_at_least 1 '^FLUSH customer=beta reason=etrn source=policyd$'
[ "$(flush_count "$D" '^FLUSH customer=acme to=127.0.0.2 reason=etrn source=policyd$')" = 1 ] \
  && pass "authorised ETRN: flush toward the client" || fail "authorised ETRN: flush toward the client" "$(cat "$D/flush.log")"
[ "$(flush_count "$D" '^FLUSH customer=beta reason=etrn source=policyd$')" = 1 ] \
  && pass "unauthorised ETRN, host delivery: flush toward the customer's host" \
  || fail "unauthorised ETRN, host delivery: flush toward the customer's host" "$(cat "$D/flush.log")"
[ "$(flush_count "$D" 'to=127.0.0.9')" = 0 ] && pass "never a flush toward the stranger" \
  || fail "never a flush toward the stranger" "$(cat "$D/flush.log")"

# fetchmail's ETRN mode (it connects from 127.0.0.1: a stranger to the table)
FM=$WORK/fm; mkdir -p "$FM"; chmod 700 "$FM"
printf 'poll 127.0.0.1 protocol ETRN service %s fetchdomains virt.dom\n' "$SMTP" >"$FM/rc"
chmod 600 "$FM/rc"
run env FETCHMAILHOME="$FM" fetchmail --pidfile "$FM/pid" -f "$FM/rc" -v
expect "fetchmail ETRN from a stranger: refused (exit 4)" 4
run "$AUTOTURNCTL" -c "$D/autoturn.conf" grant 127.0.0.1 --customer acme --ttl 1h
run env FETCHMAILHOME="$FM" fetchmail --pidfile "$FM/pid" -f "$FM/rc" -v
expect "fetchmail ETRN with a grant tied to acme: accepted (exit 0)" 0
wait_for 30 flushes_at_least 1 '^FLUSH customer=acme to=127.0.0.1 reason=etrn'
[ "$(flush_count "$D" '^FLUSH customer=acme to=127.0.0.1 reason=etrn')" = 1 ] \
  && pass "fetchmail ETRN: one flush toward the granted client" \
  || fail "fetchmail ETRN: one flush toward the granted client" "$(cat "$D/flush.log")"

# Dovecot post-login example script
run env AUTOTURNCTL="$AUTOTURNCTL" AUTOTURN_CONF="$D/autoturn.conf" IP=127.0.0.33 USER=pop@virt.dom \
  bash "$SRCDIR/conf/dovecot-post-login.sh" true
expect "dovecot post-login script runs the next program" 0
run relay 127.0.0.33
expect_line "after the post-login script: 127.0.0.33 relays" out "250"

grep -E "ERROR: AddressSanitizer|runtime error" "$D/policyd.log" && fail "sanitizers quiet" || pass "sanitizers quiet"
finish
