#!/bin/bash
# SPDX-License-Identifier: ISC
# t_s2_etrn.sh - DESIGN.md S2, ETRN (RFC 1985) end to end: fetchmail
# (protocol ETRN) and Python's smtplib talk to a real private Postfix whose
# smtpd_etrn_restrictions ask autoturn-policyd, which asks the real
# autoturn-flusher to deliver to smtp-sinks on 127.0.0.x (tests/e2e/lib.sh).
#   - a stranger's ETRN for acme (delivery connecting-ip): 450, fetchmail
#     exits 4, nothing is sent anywhere, acme's mail stays held;
#   - a stranger's ETRN for beta (delivery host 127.0.0.3): 250, fetchmail
#     exits 0, beta's mail goes to 127.0.0.3 and never to the asker;
#   - ETRN for a domain nobody holds: Postfix's 459, fetchmail exits 3;
#   - ETRN @virt.dom from acme's registered address 127.0.0.2: delivered
#     there; fetchmail after "autoturnctl grant 127.0.0.1 --customer acme":
#     exit 0, delivered to the asker 127.0.0.1; SMTP AUTH as acme (XCLIENT
#     LOGIN=acme ADDR=127.0.0.7): delivered to 127.0.0.7.
# fetchmail cannot choose its source address, so it always asks from
# 127.0.0.1 (a stranger until the grant). Exit codes: ../shared/MTA-NOTES.md.
. "$SRCDIR/tests/e2e/lib.sh"
e2e_init
e2e_config
e2e_customers <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom .virt.dom
    address 127.0.0.2
    delivery connecting-ip
    port $PA
    tls none
    trigger etrn
customer beta
    domain beta.example
    delivery host 127.0.0.3
    port $PA
    tls none
    trigger etrn
SRC
e2e_up || { finish; exit 1; }
for s in "ACME 127.0.0.2" "BETA 127.0.0.3" "ASKER 127.0.0.1" "STRANGER 127.0.0.9" "AUTH 127.0.0.7"; do
  e2e_sink $s || { finish; exit 1; }
done

FM=$WORK/fm; mkdir -p "$FM"; chmod 700 "$FM"
# fm DOMAIN - fetchmail's ETRN mode for DOMAIN; RC is its exit status
fm() {
  printf 'poll 127.0.0.1 protocol ETRN service %s fetchdomains %s\n' "$SMTP" "$1" >"$FM/rc"
  chmod 600 "$FM/rc"
  # --pidfile: as root fetchmail locks /var/run/fetchmail.pid, shared with
  # every other test running fetchmail at the same time
  run env FETCHMAILHOME="$FM" fetchmail -f "$FM/rc" --pidfile "$FM/pid" -v
}
# etrn SRC ARG [XCLIENT-ARGS] - EHLO, [XCLIENT, EHLO,] ETRN ARG from SRC; prints "CODE TEXT"
etrn() {
  python3 - "$SMTP" "$1" "$2" "${3:-}" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=(sys.argv[2], 0), timeout=30)
s.ehlo("customer.test")
if sys.argv[4]:
    code, text = s.docmd("XCLIENT", sys.argv[4])
    if code != 220:
        print("XCLIENT", code, text.decode()); sys.exit(1)
    s.ehlo("customer.test")
code, text = s.docmd("ETRN", sys.argv[3])
print(code, text.decode())
s.quit()
PY
}
# hold TAG RCPT - send a message into Postfix; it must be accepted
hold() {
  e2e_msg "$WORK/$1" "$1"
  run e2e_send 127.0.0.1 "$WORK/$1" "$2"
  expect "$1 for $2 accepted" 0 "DATA 250 2.0.0 Ok: queued as"
}
# at SINK TAG... - exactly these messages arrived at SINK
at() {
  local sink=$1; shift
  local want got
  want=$(printf '<%s@example.org>\n' "$@" | sort)
  got=$(cat "$D/sink-$sink"/* 2>/dev/null | sed -n 's/^Message-ID: //p' | sort)
  [ "$want" = "$got" ]
}
sunk() { [ "$(e2e_count "$D/sink-$1")" = "$2" ]; }
done_lines() { grep -c "customer=$1: flush done:" "$D/flusher.log"; }

hold a1 x@virt.dom
hold a2 y@sub.virt.dom
hold b1 z@beta.example
e2e_until 60 2 e2e_held acme && e2e_until 60 1 e2e_held beta &&
  pass "held: 2 for acme, 1 for beta" || fail "held 2 + 1" "$(e2e_ctl queue)"
[ "$(pf_queue_count "$D/pf")" = 0 ] && pass "Postfix's queue is empty" || fail "postfix queue empty" "$(postqueue -c "$D/pf/conf" -p)"

# --- 1. strangers ask for acme: refused, nothing moves ---
fm virt.dom
[ "$RC" = 4 ] && pass "fetchmail ETRN virt.dom from a stranger: exit 4" || fail "fetchmail stranger: exit 4" "rc=$RC" "$OUT" "$ERR"
grep -q 'Etrn command rejected: ETRN for virt.dom not allowed from this address' "$WORK/out" "$WORK/err" &&
  pass "fetchmail shows the 450 text" || fail "fetchmail shows the 450" "$OUT" "$ERR"
run etrn 127.0.0.9 virt.dom
expect_line "smtplib ETRN virt.dom from 127.0.0.9: 450" out \
  "450 4.7.1 <virt.dom>: Etrn command rejected: ETRN for virt.dom not allowed from this address"
grep -q 'acme: ETRN virt.dom from 127.0.0.1 refused: not authorised' "$D/policyd.log" &&
  grep -q 'acme: ETRN virt.dom from 127.0.0.9 refused: not authorised' "$D/policyd.log" &&
  pass "policyd logs both refusals" || fail "policyd refusals" "$(cat "$D/policyd.log")"

# --- 2. a stranger asks for beta (delivery host): to 127.0.0.3, not to the asker ---
fm beta.example
[ "$RC" = 0 ] && pass "fetchmail ETRN beta.example from a stranger: exit 0" || fail "fetchmail beta: exit 0" "rc=$RC" "$OUT" "$ERR"
if e2e_wait 60 sunk BETA 1 && e2e_until 60 0 e2e_held beta && e2e_until 30 1 done_lines beta; then
  pass "beta's mail went to its host 127.0.0.3"
else
  fail "beta delivered to 127.0.0.3" "$(ls "$D/sink-BETA")" "$(cat "$D/flusher.log")"
fi
grep -q 'beta: flush requested, to=(customer host), reason=etrn$' "$D/policyd.log" &&
  pass "policyd: flush toward beta's own host" || fail "policyd beta flush" "$(grep beta "$D/policyd.log")"
grep -q ": to=<z@beta.example>\(, orig_queue_id=[^,]*\)\?, customer=beta, relay=127.0.0.3\[127.0.0.3\]:$PA, delay=[0-9]*, dsn=[0-9.]*, status=sent (250 2.0.0 Ok)$" "$D/flusher.log" &&
  pass "flusher: b1 sent to 127.0.0.3:$PA" || fail "flusher beta sent line" "$(grep beta "$D/flusher.log")"
at BETA b1 && pass "127.0.0.3 got exactly b1" || fail "127.0.0.3 got b1" "$(ls "$D/sink-BETA")"

# --- 3. a domain nobody holds: Postfix's own 459 ---
fm nope.example
[ "$RC" = 3 ] && pass "fetchmail ETRN nope.example: exit 3 (459)" || fail "fetchmail nope: exit 3" "rc=$RC" "$OUT" "$ERR"

# --- 4. acme's registered address, ETRN @virt.dom: delivered there ---
run etrn 127.0.0.2 @virt.dom
expect_line "ETRN @virt.dom from 127.0.0.2: 250" out "250 Queuing started"
if e2e_wait 60 sunk ACME 2 && e2e_until 60 0 e2e_held acme && e2e_until 30 1 done_lines acme; then
  pass "acme's 2 messages went to 127.0.0.2"
else
  fail "acme delivered to 127.0.0.2" "$(ls "$D/sink-ACME")" "$(cat "$D/flusher.log")"
fi
at ACME a1 a2 && pass "127.0.0.2 got exactly a1 and a2" || fail "127.0.0.2 got a1 a2" "$(ls "$D/sink-ACME")"
grep -q 'acme: flush requested, to=127.0.0.2, reason=etrn$' "$D/policyd.log" &&
  grep -q 'customer=acme: flush started (pid [0-9]*, reason=etrn, to=127.0.0.2)$' "$D/flusher.log" &&
  pass "policyd and flusher log the ETRN flush toward 127.0.0.2" || fail "etrn flush logs" "$(grep acme "$D/flusher.log")"

# --- 5. fetchmail with a grant tied to acme: delivered to the asker ---
hold a3 x@virt.dom
e2e_until 60 1 e2e_held acme || fail "a3 held" "$(e2e_held acme)"
run e2e_ctl grant 127.0.0.1 --customer acme --ttl 1h
expect "autoturnctl grant 127.0.0.1 --customer acme" 0 "granted 127.0.0.1 until "
fm virt.dom
[ "$RC" = 0 ] && pass "fetchmail ETRN virt.dom with the grant: exit 0" || fail "fetchmail granted: exit 0" "rc=$RC" "$OUT" "$ERR"
if e2e_wait 60 sunk ASKER 1 && e2e_until 60 0 e2e_held acme && e2e_until 30 2 done_lines acme; then
  pass "a3 went to the asker 127.0.0.1"
else
  fail "a3 delivered to 127.0.0.1" "$(ls "$D/sink-ASKER")" "$(cat "$D/flusher.log")"
fi
at ASKER a3 && pass "127.0.0.1 got exactly a3" || fail "127.0.0.1 got a3" "$(ls "$D/sink-ASKER")"
grep -q 'customer=acme: flush started (pid [0-9]*, reason=etrn, to=127.0.0.1)$' "$D/flusher.log" &&
  pass "flusher: reason=etrn, to=127.0.0.1" || fail "flusher etrn to 127.0.0.1" "$(grep started "$D/flusher.log")"

# --- 6. SMTP AUTH as acme (XCLIENT LOGIN) from 127.0.0.7: delivered there ---
hold a4 x@virt.dom
e2e_until 60 1 e2e_held acme || fail "a4 held" "$(e2e_held acme)"
run etrn 127.0.0.1 virt.dom "ADDR=127.0.0.7 LOGIN=acme"
expect_line "ETRN virt.dom after AUTH as acme (XCLIENT) from 127.0.0.7: 250" out "250 Queuing started"
if e2e_wait 60 sunk AUTH 1 && e2e_until 60 0 e2e_held acme && e2e_until 30 3 done_lines acme; then
  pass "a4 went to the authenticated client 127.0.0.7"
else
  fail "a4 delivered to 127.0.0.7" "$(ls "$D/sink-AUTH")" "$(cat "$D/flusher.log")" "$(cat "$D/policyd.log")"
fi
at AUTH a4 && pass "127.0.0.7 got exactly a4" || fail "127.0.0.7 got a4" "$(ls "$D/sink-AUTH")"

# --- never toward a stranger; everything delivered once ---
[ "$(e2e_count "$D/sink-STRANGER")" = 0 ] && pass "the stranger 127.0.0.9 never got anything" ||
  fail "stranger got nothing" "$(ls "$D/sink-STRANGER")"
at ACME a1 a2 && at BETA b1 && at ASKER a3 && at AUTH a4 && [ "$(e2e_count "$D/sink-net")" = 0 ] &&
  pass "each message at exactly one server, none on the Internet" || fail "each message once" "$(ls -R "$D"/sink-*)"
n=$(grep -c 'status=sent' "$D/flusher.log"); m=$(grep -c 'status=' "$D/flusher.log")
[ "$n" = 5 ] && [ "$m" = 5 ] && pass "flusher: 5 status=sent lines, no other status" || fail "5 sent" "$(grep status= "$D/flusher.log")"
run e2e_ctl queue
expect "autoturnctl queue: nothing held" 0 "-- 0 messages, 0 bytes held for 0 customers"

e2e_check
finish
