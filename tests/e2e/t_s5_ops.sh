#!/bin/bash
# SPDX-License-Identifier: ISC
# t_s5_ops.sh - DESIGN.md S5, operations end to end, on the real private
# Postfix, milter, policy service and flusher of tests/e2e/lib.sh:
#   - autoturnctl queue: messages, bytes (= the spool files' sizes) and the
#     oldest per customer, and a total; queue CUSTOMER lists each message;
#   - autoturnctl flush by hand with --wait: per-recipient lines and the
#     summary, exit 0 (delivered), 75 (deferred: the server says 450), 77
#     (a target that is not the customer's), 1 (unknown customer);
#   - autoturnctl status while a flush runs (a slow smtp-sink) and after;
#   - autoturnctl grant / grants / revoke;
#   - reload while mail flows: a client sends one message after another,
#     alternately for virt.dom (held) and new.example (a relay domain that
#     no customer holds yet: it goes to the Internet's sink). Meanwhile a
#     broken source is refused by "autoturnctl compile" (the table stays),
#     then customer newco (new.example, 127.0.0.6, relay yes) is added with
#     "autoturnctl compile" (as root; the daemons read it through the
#     setgid table directory). From then on new.example mail is held, with
#     no restart and no 4xx; every accepted message is held or at the sink,
#     exactly once, and the counts add up. The policy service lets
#     127.0.0.6 relay and the flusher delivers newco's mail, both without a
#     restart.
. "$SRCDIR/tests/e2e/lib.sh"
e2e_init
E2E_CHECK_INTERVAL=1s e2e_config
e2e_customers <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
    address 127.0.0.2
    port $PA
    tls none
    trigger etrn
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
E2E_RELAY="virt.dom, beta.example, gamma.example, new.example" e2e_up || { finish; exit 1; }
e2e_sink ACME 127.0.0.2 || { finish; exit 1; }
e2e_sink BETA 127.0.0.3 -r rcpt || { finish; exit 1; }      # 450 at RCPT
e2e_sink GAMMA 127.0.0.4 -w 3 || { finish; exit 1; }        # answers DATA after 3 s
e2e_sink NEWCO 127.0.0.5 || { finish; exit 1; }

hold() {   # hold TAG RCPT
  e2e_msg "$WORK/$1" "$1"
  run e2e_send 127.0.0.1 "$WORK/$1" "$2"
  expect "$1 for $2 accepted" 0 "DATA 250 2.0.0 Ok: queued as"
}
spool_bytes() { find "$D/spool/$1/new" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# --- 1. queue ---
hold q1 a@virt.dom
hold q2 b@virt.dom
hold q3 h@beta.example
hold q4 g@gamma.example
all_held() { find "$D"/spool/*/new -type f | wc -l; }
e2e_until 60 4 all_held || fail "4 messages held" "$(find "$D/spool" -type f)"
ba=$(spool_bytes acme) bb=$(spool_bytes beta) bg=$(spool_bytes gamma)
run e2e_ctl queue
expect_line "queue: header" out "CUSTOMER                  MESSAGES      BYTES     OLDEST  ON-HOLD"
printf '%s\n' "$OUT" | grep -Eqx "acme +2 +$ba +[0-9]+s +0" && printf '%s\n' "$OUT" | grep -Eqx "beta +1 +$bb +[0-9]+s +0" &&
  printf '%s\n' "$OUT" | grep -Eqx "gamma +1 +$bg +[0-9]+s +0" &&
  pass "queue: one line per customer with messages, bytes of its spool files, age" || fail "queue lines" "$OUT"
expect_line "queue: total" out "-- 4 messages, $((ba + bb + bg)) bytes held for 3 customers"
run e2e_ctl queue acme
expect_line "queue acme: total" out "-- acme: 2 messages, $ba bytes"
[ "$(printf '%s\n' "$OUT" | grep -Ec '^[0-9]+\.M[0-9]+P[0-9]+Q[0-9]+\.[^ ]+ +[0-9]+ +[0-9]+s +<s@example.org>$')" = 2 ] &&
  printf '%s\n' "$OUT" | grep -qx ' *<a@virt.dom>' && printf '%s\n' "$OUT" | grep -qx ' *<b@virt.dom>' &&
  pass "queue acme: id, size, age, sender and recipient of each message" || fail "queue acme entries" "$OUT"
run e2e_ctl status acme
printf '%s\n' "$OUT" | grep -Eqx "acme: 2 messages, $ba bytes, oldest [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}, not flushing" &&
  pass "status acme: held mail, not flushing" || fail "status acme" "$OUT"

# --- 2. flush by hand ---
run e2e_ctl flush acme --wait
expect "flush acme --wait: exit 0" 0 "delivered 2, deferred 0, bounced 0"
[ "$(printf '%s\n' "$OUT" | grep -Ec '^[0-9]+\.M[^ ]+ <[ab]@virt.dom>: sent \(250 2.0.0 Ok\)$')" = 2 ] &&
  pass "flush acme --wait: one 'sent' line per recipient" || fail "flush progress lines" "$OUT"
[ "$(e2e_count "$D/sink-ACME")" = 2 ] && [ "$(e2e_held acme)" = 0 ] && pass "acme's 2 messages at 127.0.0.2, spool empty" ||
  fail "acme delivered" "$(ls "$D/sink-ACME")" "$(e2e_held acme)"
grep -q 'customer=acme: flush started (pid [0-9]*, reason=manual)$' "$D/flusher.log" &&
  pass "flusher log: flush started, reason=manual" || fail "flusher manual log" "$(grep started "$D/flusher.log")"
fl_idle "$D" acme         # the flush process answers, then unlocks and exits
run e2e_ctl flush acme --wait
expect_line "flush acme again: nothing held, exit 0" out "delivered 0, deferred 0, bounced 0"
run e2e_ctl flush beta --wait
expect "flush beta --wait (server says 450): exit 75" 75 "delivered 0, deferred 1, bounced 0"
expect_line "flush beta --wait: the deferred line" out \
  "$(basename "$(find "$D/spool/beta/new" -type f)") <h@beta.example>: deferred (450 4.3.0 Error: command failed)"
[ "$(e2e_held beta)" = 1 ] && pass "beta's message is still held" || fail "beta held" "$(e2e_held beta)"
run e2e_ctl flush acme --to 127.0.0.9 --wait
expect "flush acme --to 127.0.0.9: exit 77" 77 "" \
  "autoturnctl: flush: 127.0.0.9 is not a registered address of acme, nor granted to it (not-authorised)"
run e2e_ctl flush nobody --wait
expect "flush of an unknown customer: exit 1" 1 "" "autoturnctl: flush: no such customer: nobody (unknown-customer)"

# --- 3. status while a flush runs ---
run e2e_ctl flush gamma
expect_line "flush gamma (no --wait): queued" out "flush of gamma queued"
running() {
  run e2e_ctl status
  printf '%s\n' "$OUT" | grep -Eqx 'flushing gamma to \(its host\) since [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}'
}
if e2e_wait 60 running; then
  pass "status: the running flush of gamma"
  printf '%s\n' "$OUT" | grep -Eqx 'autoturn-flusher: 1 of at most 20 flushes running, up [0-9]+s' &&
    pass "status: 1 of at most 20 flushes running" || fail "status: count" "$OUT"
  run e2e_ctl status gamma
  printf '%s\n' "$OUT" | grep -Eqx "gamma: 1 messages?, $bg bytes, oldest .*, flushing now" &&
    pass "status gamma: flushing now" || fail "status gamma while flushing" "$OUT"
else
  fail "status shows the running flush" "$OUT"
fi
e2e_until 60 0 e2e_held gamma && e2e_wait 30 grep -q 'customer=gamma: flush done: delivered=1' "$D/flusher.log" ||
  fail "gamma delivered" "$(cat "$D/flusher.log")"
idle() { run e2e_ctl status; printf '%s\n' "$OUT" | grep -Eqx 'autoturn-flusher: 0 of at most 20 flushes running, up [0-9]+s'; }
e2e_wait 30 idle && pass "status afterwards: 0 flushes running" || fail "status idle" "$OUT"

# --- 4. grants ---
run e2e_ctl grant 127.0.0.5 --user joe --customer acme --ttl 1h
expect "grant 127.0.0.5" 0 "granted 127.0.0.5 until "
run e2e_ctl grants
expect_line "grants: header" out "ADDRESS                                 USER                     CUSTOMER         SOURCE               EXPIRES"
printf '%s\n' "$OUT" | grep -Eqx '127\.0\.0\.5 +joe +acme +control:root +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}' &&
  pass "grants: 127.0.0.5 joe acme control:root" || fail "grants line" "$OUT"
run e2e_ctl revoke 127.0.0.5
expect "revoke 127.0.0.5" 0
run e2e_ctl grants
! printf '%s\n' "$OUT" | grep -q '^127\.0\.0\.5 ' && pass "grants: gone after revoke" || fail "grants after revoke" "$OUT"

# --- 5. reload of a recompiled table while mail flows ---
relay6() {
  swaks --server "127.0.0.1:$SMTP" --local-interface 127.0.0.6 --from n@new.example --to x@example.org \
    --quit-after RCPT 2>&1 | awk '/^ *[-~*]> RCPT TO/ { r = 1; next } r && /^<[-~*]* +[0-9][0-9][0-9]/ { print $2; exit }'
}
run relay6
expect_line "before the reload 127.0.0.6 may not relay" out 554
python3 - "$SMTP" "$WORK/stop" "$WORK/sent" <<'PY' &
# one message per session, alternately for virt.dom and new.example,
# until the stop file appears (at most 3000); one line per message:
# "SEQ RCPT DATA-CODE"
import os, smtplib, sys
port, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "w", buffering=1) as f:
    seq = 0
    while not os.path.exists(stop) and seq < 3000:
        seq += 1
        rcpt = "v%d@virt.dom" % seq if seq % 2 else "n%d@new.example" % seq
        msg = ("From: <s@example.org>\r\nTo: <%s>\r\nSubject: flow %d\r\n"
               "Message-ID: <flow%d@example.org>\r\n\r\nflow %d\r\n" % (rcpt, seq, seq, seq))
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        try:
            s.sendmail("s@example.org", [rcpt], msg.encode())
            code = 250
        except smtplib.SMTPResponseException as e:
            code = e.smtp_code
        except smtplib.SMTPRecipientsRefused as e:
            code = list(e.recipients.values())[0][0]
        s.quit()
        f.write("%d %s %d\n" % (seq, rcpt, code))
PY
SENDER=$!
sunk_new() { [ "$(grep -l '^X-Rcpt-Args: <n[0-9]*@new.example>' "$D"/sink-net/* 2>/dev/null | wc -l)" -ge "$1" ]; }
e2e_wait 60 sunk_new 3 && pass "before the reload new.example mail goes on to the Internet" ||
  fail "new.example at the sink before the reload" "$(tail -3 "$WORK/sent")"
cp "$D/lib/customers.cdb" "$WORK/table.before"
cp "$D/customers" "$WORK/customers.good"
printf 'customer newco\n    domain new..example\n' >>"$D/customers"
run e2e_ctl compile
expect "compile of a broken source: exit 65, table kept" 65 "" \
  "$D/customers:$(wc -l <"$D/customers"): bad domain 'new..example': empty label"
cmp -s "$D/lib/customers.cdb" "$WORK/table.before" && pass "the broken source did not replace the table" ||
  fail "table unchanged after the broken compile"
cp "$WORK/customers.good" "$D/customers"
printf 'customer newco\n    domain new.example\n    address 127.0.0.6\n    delivery host 127.0.0.5\n    port %s\n    tls none\n    trigger etrn\n    relay yes\n' \
  "$PA" >>"$D/customers"
run e2e_ctl compile
expect "compile with customer newco" 0 "4 customers, 4 domains, 2 networks"
held_new() { [ "$(e2e_held newco)" -ge "$1" ]; }
if e2e_wait 60 held_new 1; then
  pass "after the reload new.example mail is held for newco"
  switch=$(tail -1 "$WORK/sent" | cut -d' ' -f1)
  e2e_wait 60 held_new 10 || fail "10 held for newco" "$(e2e_held newco)"
else
  fail "new.example held after the reload" "$(cat "$D/milter.log" | tail -5)"
  switch=0
fi
touch "$WORK/stop"
wait "$SENDER"
total=$(wc -l <"$WORK/sent")
[ "$(awk '$3 != 250' "$WORK/sent" | wc -l)" = 0 ] && pass "all $total messages sent during the reload got 250" ||
  fail "every message 250" "$(awk '$3 != 250' "$WORK/sent" | head)"
run relay6
expect_line "after the reload 127.0.0.6 relays (policyd, no restart)" out 250

# accounting: every accepted message is held or at the sink, exactly once
net_want=$(awk '$3 == 250' "$WORK/sent" | wc -l)
pf_idle() { [ "$(pf_queue_count "$D/pf")" = 0 ]; }
e2e_wait 60 pf_idle || fail "Postfix's queue drains" "$(postqueue -c "$D/pf/conf" -p | tail -3)"
ids() { sed -n 's/^Message-ID: <flow\([0-9]*\)@example.org>\r\{0,1\}$/\1/p' "$@" 2>/dev/null | sort -n; }
ids $(find "$D/spool/acme/new" -type f) >"$WORK/held-acme"
ids $(find "$D/spool/newco/new" -type f) >"$WORK/held-newco"
ids "$D"/sink-net/* >"$WORK/at-sink"
awk '$3 == 250 { print $1 }' "$WORK/sent" | sort -n >"$WORK/accepted"
sort -n "$WORK/held-acme" "$WORK/held-newco" "$WORK/at-sink" >"$WORK/found"
ha=$(wc -l <"$WORK/held-acme") hn=$(wc -l <"$WORK/held-newco") ns=$(wc -l <"$WORK/at-sink")
if cmp -s "$WORK/accepted" "$WORK/found"; then
  pass "nothing lost, nothing twice: $net_want accepted = $ha held for acme + $hn held for newco + $ns at the sink"
else
  fail "accepted = held + sink" "accepted $net_want, acme $ha, newco $hn, sink $ns" \
    "$(diff "$WORK/accepted" "$WORK/found" | head)"
fi
[ "$(awk '$2 ~ /virt.dom$/ && $3 == 250' "$WORK/sent" | wc -l)" = "$ha" ] &&
  ! awk '$2 ~ /virt.dom$/ { print $1 }' "$WORK/sent" | grep -qxFf - "$WORK/at-sink" &&
  pass "every virt.dom message held for acme throughout the reload" || fail "virt.dom all held" "acme $ha"
last_net=$(tail -1 "$WORK/at-sink"); first_held=$(head -1 "$WORK/held-newco")
[ -n "$first_held" ] && [ "${last_net:-0}" -lt "$first_held" ] && [ "$first_held" -le "$switch" ] &&
  pass "one clean switch: new.example up to #$last_net relayed, from #$first_held held" ||
  fail "clean switch" "last relayed $last_net, first held $first_held, observed at $switch"

# the flusher knows newco without a restart
run e2e_ctl flush newco --wait
expect "flush newco --wait: delivered to its host" 0 "delivered $hn, deferred 0, bounced 0"
[ "$(e2e_count "$D/sink-NEWCO")" = "$hn" ] && [ "$(e2e_held newco)" = 0 ] &&
  pass "newco's $hn messages at 127.0.0.5, spool empty" || fail "newco delivered" "$(e2e_count "$D/sink-NEWCO")"

e2e_check
finish
