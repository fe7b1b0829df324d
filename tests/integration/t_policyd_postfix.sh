#!/bin/bash
# SPDX-License-Identifier: ISC
# t_policyd_postfix.sh - autoturn-policyd behind a private Postfix on
# loopback, configured like conf/postfix-main.cf.policy: the policy socket
# inside Postfix's queue directory (private/autoturn-policy, group
# postfix), reached by a chrooted smtpd as unix:private/autoturn-policy.
# mynetworks is only 127.0.0.1, so other 127.0.0.x clients are strangers
# unless the policy service says OK. Checks relay (unknown / registered
# customer / autoturnctl grant and its expiry / SASL login via XCLIENT
# LOGIN), the AutoTURN notice (exactly one flush request per connecting
# customer) and ETRN as the client sees it (python smtplib and fetchmail),
# with a fake flusher (see lib/policyd.sh) recording the flush requests.
# Then the attack of a hostile local user (runuser -u nobody): a forged
# sasl_username on every policy listener creates no grant, asks for no
# flush, opens no relay, and is logged as ignored.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/policyd.sh"
chmod 755 "$WORK"   # the daemon runs as nobody
D=$WORK/pd PF=$WORK/pf
P=$(free_port) SMTP=$(free_port)
trap 'pf_stop "$PF"; pd_stop; flusher_stop; rm -rf "$WORK"' EXIT
# Postfix's queue directory first: the policy socket lives inside it
pf_new "$PF" "$SMTP"
sed -i 's/^\(127\.0\.0\.1:[0-9]* *inet *n *- *\)n/\1y/' "$PF/conf/master.cf"   # chrooted smtpd
grep -q '^127\.0\.0\.1:[0-9]* *inet *n *- *y *- *- *smtpd' "$PF/conf/master.cf" ||
  { fail "smtpd chrooted in master.cf" "$(cat "$PF/conf/master.cf")"; finish; exit; }
postfix -c "$PF/conf" check || { fail "postfix check"; finish; exit; }
PD_LISTEN="\"unix:$PF/queue/private/autoturn-policy:0660\"" pd_setup "$D" "$P" "customer acme
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

CHECK="unix:private/autoturn-policy"
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

# --- a hostile local user forges sasl_username (autoturn-policyd(8), SECURITY) ---
: >"$D/flush.log"
before=$("$AUTOTURNCTL" -c "$D/autoturn.conf" grants)
run runuser -u nobody -- python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1]); print("connected")
except OSError as e:
    print(e.strerror)' "$PF/queue/private/autoturn-policy"
expect_line "the shipped socket (private/autoturn-policy): nobody cannot even connect" out "Permission denied"
forge() {   # LISTENER STATE [ATTR...]: a forged request as user nobody
  local to=$1 state=$2; shift 2
  runuser -u nobody -- bash -c "$(declare -f policy_ask); policy_ask \"\$@\"" _ "$to" \
    protocol_state="$state" client_address=127.0.0.66 "$@"
}
for l in "$P" "$D/policy.sock"; do
  run forge "$l" ETRN etrn_domain=virt.dom sasl_username=acme
  expect_line "forged ETRN as acme on $l: refused like any stranger" out \
    "450 4.7.1 ETRN for virt.dom not allowed from this address"
  run forge "$l" ETRN etrn_domain=acme sasl_username=acme
  expect_line "forged ETRN #acme on $l: answered as for an unknown name" out "DUNNO"
  run forge "$l" RCPT sasl_username=eve recipient=x@example.org
  expect_line "forged login eve on $l: no relay" out "DUNNO"
done
run "$AUTOTURNCTL" -c "$D/autoturn.conf" grants
[ "$OUT" = "$before" ] && pass "forged logins created no grant" || fail "forged logins created no grant" "$before" "$OUT"
run relay 127.0.0.66
expect_line "the attacker's address still cannot relay" out "554"
run etrn 127.0.0.9 acme
expect_line "ETRN #acme from a stranger: what an unknown name gets" out "459 <acme>: service unavailable"
run etrn 127.0.0.9 nobody-here
expect_line "ETRN #unknown from a stranger: the same" out "459 <nobody-here>: service unavailable"
for i in $(seq 1 50); do grep -q 'sasl_username=acme ignored from an untrusted peer' "$D/policyd.log" && break; sleep 0.1; done
grep -q "sasl_username=acme ignored from an untrusted peer (peer=\[127.0.0.1\])" "$D/policyd.log" &&
  pass "inet: the ignored attribute is logged" || fail "inet: the ignored attribute is logged" "$(grep ignored "$D/policyd.log")"
grep -q "sasl_username=acme ignored from an untrusted peer (peer=nobody (pid [0-9]*))" "$D/policyd.log" &&
  pass "unix: the ignored attribute is logged with the peer's user" ||
  fail "unix: the ignored attribute is logged with the peer's user" "$(grep ignored "$D/policyd.log")"
[ "$(flush_count "$D" 'to=127.0.0.66')" = 0 ] && pass "no flush toward the attacker" ||
  fail "no flush toward the attacker" "$(cat "$D/flush.log")"
# the same request from root (trusted) on the unix: socket does create the grant
run policy_ask "$D/policy.sock" protocol_state=RCPT client_address=127.0.0.67 sasl_username=eve recipient=x@example.org
expect_line "the same login from a trusted peer: a grant" out "OK"

grep -E "ERROR: AddressSanitizer|runtime error" "$D/policyd.log" && fail "sanitizers quiet" || pass "sanitizers quiet"
finish
