#!/bin/bash
# SPDX-License-Identifier: ISC
# t_flusher_basic.sh - autoturn-flusher against real smtp-sink peers on
# 127.0.0.x: byte-exact delivery and an empty spool afterwards; a target
# that is not the customer's (nothing sent); 450 and a custom 452 at RCPT
# (kept, exit 75); 5xx after DATA (bounced: a DSN goes to the FAKE local
# MTA of lib/flusher.sh, the spool copy is gone); the connection dropped
# after the final dot (kept, then delivered: at most one duplicate); two
# flushes at once (one runs); kill -9 of the flush process mid-delivery
# (nothing lost); retry_interval after a failure; STATUS and PING.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"

D=$(fl_dir)
trap 'fl_stop; sink_stop A; sink_stop B; rm -rf "$D" "$WORK"' EXIT
PA=$(free_port) PB=$(free_port)

fl_customers "$D" <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
    address 127.0.0.2
    delivery connecting-ip
    port $PA
    tls none
    trigger connect etrn
customer beta
    domain beta.example
    delivery host 127.0.0.3:$PB
    tls none
SRC
fl_config "$D" "retry_interval = 1h"
# section 6 holds a flush at its greeting while it checks things: a long wait
sed -i 's/greeting_timeout = 10s/greeting_timeout = 300s/' "$D/autoturn.conf"
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }
pass "flusher starts as nobody"

# msg FILE TAG [BODY-LINES...] - a message with a unique Message-ID
msg() {
  local f=$1 tag=$2; shift 2
  { printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n' "$tag" "$tag"
    local l; for l in "$@"; do printf '%s\r\n' "$l"; done; } >"$f"
}
# sink_ids DIR... - Message-IDs received
sink_ids() { cat "$@" 2>/dev/null | grep -h '^Message-ID:' ; }

# --- 1. byte-exact delivery to the trigger address (below our Received:
# line, which must be well formed); spool empty afterwards ---
sink_start A "127.0.0.2:$PA" "$D/sinkA" || { fail "sink A" "$(cat "$D/sinkA.log")"; finish; exit 1; }
long=$(head -c 3000 /dev/zero | tr '\0' 'x')
msg "$WORK/m1" m1 "plain line"
msg "$WORK/m2" m2 ".leading dot" ".." "." "end"
msg "$WORK/m3" m3 "$(printf '8-bit: \xe9t\xe9 \xff')"
msg "$WORK/m4" m4 "$long"
msg "$WORK/m5" m5 "last"
for i in 1 2 3 4 5; do fl_put "$D" acme "$WORK/m$i" a@virt.dom; done
run fl_ctl "$D" flush acme --to 127.0.0.2 --wait
expect "flush --wait delivers 5" 0 "delivered 5, deferred 0, bounced 0"
printf "%s\n" "$OUT" | grep -Eq "^[0-9]+\.M[0-9]+P[0-9]+Q[0-9]+\.[^ ]+ <a@virt.dom>: sent \(250 " && pass "one readable progress line per recipient" || fail "progress lines" "$OUT"
[ "$(fl_held "$D" acme)" = 0 ] && pass "spool empty after delivery" || fail "spool empty" "$(fl_held "$D" acme)"
bad=$(python3 - "$D/sinkA" "$WORK" "$SRCDIR/tests/integration/lib" <<'PY'
import os, sys, re
sink, work = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from mailcheck import after_sink, strip_ours, received_ok
got = {}
bad = []
for n in os.listdir(sink):
    d = open(os.path.join(sink, n), 'rb').read()
    d = d[d.index(b'\nReceived: ') + 1:]           # smtp-sink's X- lines, then its Received:
    ours, body = strip_ours(after_sink(d))
    why = received_ok(ours, 'flusher.autoturn.test', rcpt='a@virt.dom')
    if why:
        bad.append(why)
    m = re.search(rb'Subject: (m\d)', body)
    got[m.group(1).decode()] = body
for k in ['m1', 'm2', 'm3', 'm4', 'm5']:
    want = open(os.path.join(work, k), 'rb').read().replace(b'\r\n', b'\n') + b'\n'
    if got.get(k) != want:
        bad.append(k)
print(' '.join(bad) if bad or len(got) != 5 else 'ok', len(got))
PY
)
[ "$bad" = "ok 5" ] && pass "5 messages byte-exact at the sink" || fail "byte-exact" "$bad"
grep -q ": to=<a@virt.dom>\(, orig_queue_id=[^,]*\)\?, customer=acme, relay=127.0.0.2\[127.0.0.2\]:$PA, delay=[0-9]*, dsn=[0-9.]*, status=sent (250 " "$D/flusher.log" &&
  pass "log line per recipient" || fail "log line" "$(grep status= "$D/flusher.log" | tail -2)"

# --- 2. a target that is not acme's: refused, nothing sent ---
msg "$WORK/n1" n1 "not for 127.0.0.9"
fl_put "$D" acme "$WORK/n1" a@virt.dom
before=$(ls "$D/sinkA" | wc -l)
run fl_ctl "$D" flush acme --to 127.0.0.9 --wait
expect "unregistered --to: refused, exit 77" 77 "" "flush: 127.0.0.9 is not a registered address of acme, "
run fl_raw "$D" "FLUSH customer=acme to=127.0.0.9 reason=etrn"
expect "FLUSH to=127.0.0.9: ERR not-authorised" 0 "ERR code=not-authorised text=127.0.0.9%20is%20not%20a%20registered%20address%20of%20acme,%20"
sleep 0.5
[ "$(ls "$D/sinkA" | wc -l)" = "$before" ] && [ "$(fl_held "$D" acme)" = 1 ] &&
  pass "refused: nothing sent, spool unchanged" || fail "refused: nothing sent" "$(ls "$D/sinkA")"
run fl_raw "$D" "FLUSH customer=nosuch reason=manual"
expect_line "unknown customer" out "ERR code=unknown-customer text=no%20such%20customer:%20nosuch"
run fl_raw "$D" "HELLO"
expect_line "unknown verb" out "ERR code=unknown-verb text=HELLO"
run fl_raw "$D" "PING"
expect_line "PING" out "OK"
fl_idle "$D" acme
run fl_ctl "$D" flush acme --to 127.0.0.2 --wait
expect "then delivered to 127.0.0.2" 0 "delivered 1, deferred 0, bounced 0"

# --- 3. beta (delivery host): 450 and 452 at RCPT keep the message ---
msg "$WORK/b1" b1 "for beta"
fl_put "$D" beta "$WORK/b1" x@beta.example
sink_start B "127.0.0.3:$PB" "$D/sinkB1" -r rcpt || fail "sink B -r rcpt"
run fl_ctl "$D" flush beta --wait
expect "450 at RCPT: deferred, exit 75" 75 "deferred (450"
[ "$(fl_held "$D" beta)" = 1 ] && pass "450: message kept" || fail "450: message kept"
fl_idle "$D" beta               # the daemon notes the failure when the flush process ends
run fl_raw "$D" "FLUSH customer=beta reason=connect"
expect_line "after a failure, a trigger within retry_interval does not start a flush" out "OK queued=0"
sink_stop B
sink_start B "127.0.0.3:$PB" "$D/sinkB2" -b "452 4.2.2 mailbox full" -r rcpt || fail "sink B 452"
run fl_ctl "$D" flush beta --wait
expect "custom 452: deferred with its text" 75 "deferred (452 4.2.2 mailbox full)"
[ "$(fl_held "$D" beta)" = 1 ] && pass "452: message kept" || fail "452: message kept"
sink_stop B

# --- 4. 5xx after DATA: bounced, DSN to the (fake) local MTA, spool copy gone ---
fl_idle "$D" beta
sink_start B "127.0.0.3:$PB" "$D/sinkB3" -f . || fail "sink B -f ."
run fl_ctl "$D" flush beta --wait
expect "5xx after the final dot: bounced" 0 "delivered 0, deferred 0, bounced 1"
dsn=$(ls "$D"/dsn/*.msg 2>/dev/null | head -1)
if [ -n "$dsn" ] && grep -qx -- '-f' "${dsn%.msg}.args" && grep -qx 's@example.org' "${dsn%.msg}.args" &&
   grep -q '^Action: failed' "$dsn" && grep -q 'Message-ID: <b1@example.org>' "$dsn"; then
  pass "DSN for the sender handed to the local MTA"
else
  fail "DSN injected" "$(cat "${dsn%.msg}.args" 2>/dev/null)" "$(head -20 "$dsn" 2>/dev/null)"
fi
[ "$(fl_held "$D" beta)" = 0 ] && pass "bounced message removed" || fail "bounced message removed"
sink_stop B

# --- 5. connection dropped after the final dot: kept, then delivered (<= 1 duplicate) ---
msg "$WORK/q1" q1 "drop after dot"
fl_put "$D" beta "$WORK/q1" x@beta.example
sink_start B "127.0.0.3:$PB" "$D/sinkB4" -q . || fail "sink B -q ."
fl_idle "$D" beta
run fl_ctl "$D" flush beta --wait
expect "drop after the final dot: deferred" 75 "delivered 0, deferred 1"
[ "$(fl_held "$D" beta)" = 1 ] && pass "drop after dot: message kept" || fail "drop after dot: kept"
sink_stop B
sink_start B "127.0.0.3:$PB" "$D/sinkB5" || fail "sink B normal"
fl_idle "$D" beta
run fl_ctl "$D" flush beta --wait
expect "next flush delivers it" 0 "delivered 1, deferred 0"
n=$(sink_ids "$D"/sinkB4/* "$D"/sinkB5/* | grep -c 'q1@example.org')
[ "$n" -ge 1 ] && [ "$n" -le 2 ] && [ "$(fl_held "$D" beta)" = 0 ] &&
  pass "dropped message delivered ($n copies, at most one duplicate)" || fail "dropped message" "copies: $n"
sink_stop B

# --- 6. two flushes at once: one runs; the sink sees each message once ---
# The sink is stopped (SIGSTOP) while the first flush starts: the flush
# waits for its greeting (greeting_timeout 300s) until the checks are done.
sink_stop A
fl_idle "$D" acme
sink_start A "127.0.0.2:$PA" "$D/sinkA2" -w 1 || fail "sink A slow"
for i in 1 2 3; do msg "$WORK/t$i" "t$i" "twice?"; fl_put "$D" acme "$WORK/t$i" a@virt.dom; done
kill -STOP "$SINK_PID_A"
fl_ctl "$D" flush acme --to 127.0.0.2 --wait >"$WORK/first.out" 2>&1 &
first=$!
flushing() { fl_raw "$D" STATUS | grep -q "^FLUSHING customer=acme "; }
wait_for 30 flushing || fail "first flush running" "$(fl_raw "$D" STATUS)"
run fl_ctl "$D" flush acme --to 127.0.0.2 --wait
expect "second waiting flush: busy, exit 75" 75 "" "a flush for acme is already running (busy)"
run fl_raw "$D" "FLUSH customer=acme to=127.0.0.2 reason=connect"
expect_line "a trigger during the flush is merged (rescan)" out "OK queued=1"
run fl_raw "$D" "STATUS"
expect "STATUS lists the running flush" 0 "FLUSHING customer=acme to=127.0.0.2 since="
kill -CONT "$SINK_PID_A"
wait "$first"
grep -q "delivered 3, deferred 0, bounced 0" "$WORK/first.out" && pass "first flush delivered 3" ||
  fail "first flush" "$(cat "$WORK/first.out")"
# the rescan runs and finds nothing
wait_log "$D/flusher.log" "customer=acme: nothing held" 30
n=$(sink_ids "$D"/sinkA2/*); total=$(printf '%s\n' "$n" | grep -c .); uniq=$(printf '%s\n' "$n" | sort -u | grep -c .)
[ "$total" = 3 ] && [ "$uniq" = 3 ] && pass "each message once at the sink" || fail "each once" "$n"
grep -q "customer=acme: flush running; it will run again" "$D/flusher.log" &&
  grep -q "customer=acme: nothing held" "$D/flusher.log" && pass "rescan ran once after the flush" ||
  fail "rescan" "$(grep customer=acme "$D/flusher.log" | tail -5)"

# --- 7. kill -9 of the flush process mid-delivery: nothing lost ---
N=12
for i in $(seq 1 $N); do msg "$WORK/k$i" "k$i" "kill test"; fl_put "$D" acme "$WORK/k$i" a@virt.dom; done
fl_idle "$D" acme
starts=$(grep -c "customer=acme: flush started (pid " "$D/flusher.log")
fl_ctl "$D" flush acme --to 127.0.0.2 >/dev/null
# the new flush process (from the log), once the slow sink (1 s a
# message) has at least one of the 12
new_start() { [ "$(grep -c "customer=acme: flush started (pid " "$D/flusher.log")" -gt "$starts" ]; }
some_sunk() { sink_ids "$D"/sinkA2/* | grep -q '<k'; }
wait_for 30 new_start && wait_for 60 some_sunk || fail "flush under way" "$(tail -5 "$D/flusher.log")"
child=$(sed -n 's/.*customer=acme: flush started (pid \([0-9]*\),.*/\1/p' "$D/flusher.log" | tail -1)
if [ -n "$child" ] && kill -9 "$child"; then pass "flush process killed with -9 (pid $child)"; else fail "flush process found"; fi
wait_gone "$child"
early=$(sink_ids "$D"/sinkA2/* | grep -c '<k')
[ "$early" -lt "$N" ] && pass "killed mid-delivery ($early of $N at the sink before the kill)" ||
  fail "killed mid-delivery" "all $N already delivered"
wait_log "$D/flusher.log" "customer=acme: flush process $child killed by signal 9" &&
  pass "death logged" || fail "death logged" "$(tail -3 "$D/flusher.log")"
kill -0 "$FL_PID" 2>/dev/null && pass "daemon survives the child's death" || fail "daemon survives"
sink_stop A
sink_start A "127.0.0.2:$PA" "$D/sinkA3" || fail "sink A normal"
fl_idle "$D" acme
run fl_ctl "$D" flush acme --to 127.0.0.2 --wait
expect "flush after the kill" 0 "deferred 0, bounced 0"
fl_idle "$D" acme
uniq=$(sink_ids "$D"/sinkA2/* "$D"/sinkA3/* | grep '<k' | sort -u | wc -l)
[ "$uniq" = "$N" ] && [ "$(fl_held "$D" acme)" = 0 ] && pass "all $N messages delivered at least once, none lost" ||
  fail "none lost" "unique at the sink: $uniq of $N; held: $(fl_held "$D" acme)"

run fl_ctl "$D" status acme
expect "status CUSTOMER" 0 "acme: 0 messages, 0 bytes, oldest -, not flushing"
run fl_ctl "$D" status
expect "status" 0 "autoturn-flusher: 0 of at most 20 flushes running"
fl_stop
grep -q "stopping" "$D/flusher.log" && pass "stops on SIGTERM" || fail "stops"
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$D/flusher.log" &&
  fail "no sanitizer reports" "$(grep -E -A5 'Sanitizer|runtime error' "$D/flusher.log" | head -20)" ||
  pass "no sanitizer reports in the flusher's log"
finish
