#!/bin/bash
# SPDX-License-Identifier: ISC
# t_s5_admin.sh - DESIGN.md S5, the postsuper/postqueue side of
# operations, on the real private Postfix, milter, policy service and
# flusher of tests/e2e/lib.sh:
#   - autoturnctl hold --customer: a flush skips mail on hold; it still
#     counts for the customer's max-messages (the milter answers 452 4.2.2)
#     and shows in queue and status (on_hold, parsed from --json);
#   - release of one message: the next manual flush delivers exactly it;
#   - flush --domain D flushes the customer holding D; flush --all asks one
#     flush per customer with mail to deliver; status --json shows the
#     running flush; unknown domain (1);
#   - grants --json after autoturnctl grant, and with no grant;
#   - a daemon that does not answer: 69 and no half JSON on stdout;
#     flush --all says so once and stops.
. "$SRCDIR/tests/e2e/lib.sh"
e2e_init
e2e_config
e2e_customers <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
    address 127.0.0.2
    port $PA
    tls none
    trigger etrn
    max-messages 3
customer beta
    domain beta.example
    delivery host 127.0.0.3
    port $PA
    tls none
    trigger etrn
customer gamma
    domain gamma.example
    delivery host 127.0.0.4
    port $PA
    tls none
    trigger etrn
SRC
E2E_RELAY="virt.dom, beta.example, gamma.example" e2e_up || { finish; exit 1; }
e2e_sink ACME 127.0.0.2 || { finish; exit 1; }
e2e_sink BETA 127.0.0.3 || { finish; exit 1; }
e2e_sink GAMMA 127.0.0.4 -w 3 || { finish; exit 1; }     # answers DATA after 3 s

hold_msg() {   # hold_msg TAG RCPT
  e2e_msg "$WORK/$1" "$1"
  run e2e_send 127.0.0.1 "$WORK/$1" "$2"
  expect "$1 for $2 accepted" 0 "DATA 250 2.0.0 Ok: queued as"
}
js() {  # js PYTHON: run with d = the JSON in $OUT; exit status of the assertions
  printf '%s' "$OUT" | python3 -c "import json, sys; d = json.load(sys.stdin); $1"
}
id_of() {  # id_of TAG: spool id of the acme message with Subject TAG
  grep -l "^Subject: $1" "$D"/spool/acme/*/* | head -1 | xargs -r basename
}

# --- 1. hold: skipped by flushes, counted for the limit ---
hold_msg a1 a1@virt.dom
hold_msg a2 a2@virt.dom
hold_msg a3 a3@virt.dom
e2e_until 60 3 e2e_held acme || fail "3 held for acme" "$(e2e_held acme)"
run e2e_ctl hold --customer acme
expect_line "hold --customer acme" out "-- acme: 3 messages put on hold"
run e2e_ctl queue --json
js 'a = [c for c in d["customers"] if c["customer"] == "acme"][0]; assert a["messages"] == 3 and a["on_hold"] == 3, a' &&
  pass "queue --json: acme 3 messages, 3 on hold" || fail "queue --json on hold" "$OUT"
e2e_msg "$WORK/a4" a4
run e2e_send 127.0.0.1 "$WORK/a4" a4@virt.dom
expect_line "a 4th message for acme: 452, mail on hold counts for max-messages 3" out \
  "RCPT <a4@virt.dom> 452 4.2.2 Mailbox full: too much mail held for this domain"
run e2e_ctl flush acme --wait
expect "flush acme --wait with everything on hold: nothing delivered" 0 "delivered 0, deferred 0, bounced 0"
[ "$(e2e_count "$D/sink-ACME")" = 0 ] && [ "$(find "$D/spool/acme/hold" -type f | wc -l)" = 3 ] &&
  pass "nothing at acme's server, 3 still on hold" || fail "hold skipped" "$(e2e_count "$D/sink-ACME")"
run e2e_ctl status acme --json
js 'assert d == {"customer": "acme", "messages": 3, "bytes": d["bytes"], "oldest": d["oldest"], "on_hold": 3, "flushing": False}, d; assert d["bytes"] > 0 and d["oldest"] > 1700000000' &&
  pass "status acme --json: 3 messages, 3 on hold, not flushing" || fail "status acme --json" "$OUT"
run e2e_ctl status acme
printf '%s\n' "$OUT" | grep -Eqx "acme: 3 messages, [0-9]+ bytes, oldest [0-9-]+ [0-9:]+, not flushing, 3 on hold" &&
  pass "status acme: 3 on hold" || fail "status acme text" "$OUT"

# --- 2. release one: the next flush delivers exactly it ---
id2=$(id_of a2)
run e2e_ctl release "$id2"
expect_line "release a2" out "acme/$id2: released from hold"
run e2e_ctl flush acme --wait
expect "flush acme --wait: the released one" 0 "delivered 1, deferred 0, bounced 0"
expect_line "flush acme: it is a2" out "$id2 <a2@virt.dom>: sent (250 2.0.0 Ok)"
[ "$(e2e_count "$D/sink-ACME")" = 1 ] && grep -q '^Subject: a2' "$D"/sink-ACME/* &&
  pass "a2 (and only a2) at acme's server" || fail "a2 delivered" "$(ls "$D/sink-ACME")"

# --- 3. flush --domain, flush --all ---
run e2e_ctl release --customer acme
expect_line "release --customer acme" out "-- acme: 2 messages released from hold"
run e2e_ctl flush --domain sub.virt.dom --wait
expect "flush --domain of a domain nobody holds: exit 1" 1 "" "autoturnctl: flush: no customer holds domain sub.virt.dom"
run e2e_ctl flush --domain VIRT.dom --wait
expect "flush --domain VIRT.dom --wait: acme's two" 0 "delivered 2, deferred 0, bounced 0"
[ "$(e2e_count "$D/sink-ACME")" = 3 ] && [ "$(e2e_held acme)" = 0 ] && pass "acme's spool empty, 3 at its server" ||
  fail "flush --domain delivered" "$(e2e_count "$D/sink-ACME")"
hold_msg b1 b1@beta.example
hold_msg g1 g1@gamma.example
held2() { [ "$(e2e_held beta)" = 1 ] && [ "$(e2e_held gamma)" = 1 ]; }
e2e_wait 60 held2 || fail "beta and gamma hold one each"
run e2e_ctl flush --all
expect "flush --all" 0 "-- 2 flushes queued"
expect_line "flush --all: beta" out "flush of beta queued"
expect_line "flush --all: gamma" out "flush of gamma queued"
! printf '%s\n' "$OUT" | grep -q 'flush of acme' && pass "flush --all: not acme (nothing to deliver)" ||
  fail "flush --all asked acme" "$OUT"
gamma_running() {
  run e2e_ctl status --json
  js 'f = [x for x in d["flushes"] if x["customer"] == "gamma"]; assert f and f[0]["to"] is None and f[0]["since"] > 1700000000; assert d["max"] == 20 and d["running"] >= 1 and d["uptime"] >= 0 and d["odmr_sessions"] == 0' 2>/dev/null
}
e2e_wait 30 gamma_running && pass "status --json: the running flush of gamma" || fail "status --json running" "$OUT"
e2e_until 60 0 e2e_held beta && e2e_until 60 0 e2e_held gamma &&
  pass "flush --all delivered beta's and gamma's mail" || fail "flush --all delivered" "$(e2e_held beta) $(e2e_held gamma)"
idle() { run e2e_ctl status --json; js 'assert d["running"] == 0 and d["flushes"] == []' 2>/dev/null; }
e2e_wait 30 idle && pass "status --json afterwards: nothing running, no flushes" || fail "status --json idle" "$OUT"
grep -q 'customer=beta: flush started (pid [0-9]*, reason=manual)$' "$D/flusher.log" &&
  pass "flush --all: reason=manual" || fail "flush --all reason" "$(grep started "$D/flusher.log")"

# --- 4. grants --json ---
run e2e_ctl grants --json
[ "$RC" = 0 ] && js 'assert d == {"grants": []}, d' && pass "grants --json with no grant: empty list" ||
  fail "grants --json empty" "$OUT"
run e2e_ctl grant 127.0.0.5 --user joe --customer acme --ttl 1h
run e2e_ctl grant 2001:db8::7 --ttl 10m
run e2e_ctl grants --json
now=$(date +%s)
js "g = sorted(d['grants'], key=lambda x: x['address']); assert [x['address'] for x in g] == ['127.0.0.5', '2001:db8::7'], g
assert g[0]['user'] == 'joe' and g[0]['customer'] == 'acme' and 3500 < g[0]['expires'] - $now <= 3600, g
assert g[1]['user'] is None and g[1]['customer'] is None and 500 < g[1]['expires'] - $now <= 600, g" &&
  pass "grants --json: address, user, customer (null when none), expires" || fail "grants --json" "$OUT"

# --- 5. a daemon that does not answer ---
pd_stop
run e2e_ctl grants --json
expect "grants --json, policyd down: exit 69" 69 "" "autoturnctl: autoturn-policyd does not answer"
[ -z "$OUT" ] && pass "grants --json, policyd down: nothing on stdout" || fail "half JSON" "$OUT"
fl_stop
run e2e_ctl status --json
expect "status --json, flusher down: exit 69" 69 "" "autoturnctl: autoturn-flusher does not answer"
[ -z "$OUT" ] && pass "status --json, flusher down: nothing on stdout" || fail "half JSON" "$OUT"
for c in beta gamma; do
  printf 'Subject: x\r\n\r\nx\r\n' | "$SPOOL_PUT" "$D/spool" "$c" s@example.org "x@$c.example" >/dev/null
done
run e2e_ctl flush --all
expect "flush --all, flusher down: exit 69" 69 "-- 0 flushes queued"
[ "$(printf '%s\n' "$ERR" | grep -c 'does not answer')" = 1 ] && pass "flush --all, flusher down: said once, not per customer" ||
  fail "flush --all gives up at once" "$ERR"

e2e_check
finish
