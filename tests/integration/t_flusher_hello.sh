#!/bin/bash
# SPDX-License-Identifier: ISC
# t_flusher_hello.sh - the Hello port of autoturn-flusher (connect, close):
# the server closes every connection at once without a byte; a connect
# from an unknown address triggers nothing; a connect from acme's
# registered address flushes acme to that address (smtp-sink on
# 127.0.0.2); ten connects within rate_interval give one flush; a
# customer whose triggers lack "connect" is not flushed.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"

D=$(fl_dir)
trap 'fl_stop; sink_stop A; sink_stop Q; rm -rf "$D" "$WORK"' EXIT
PA=$(free_port) PH=$(free_port)

fl_customers "$D" <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
    address 127.0.0.2
    delivery connecting-ip
    port $PA
    tls none
    trigger connect etrn
customer quiet
    domain quiet.example
    address 127.0.0.4
    delivery connecting-ip
    port $PA
    tls none
    trigger etrn
SRC
fl_config "$D" "retry_interval = 1h" "hello {" "    enable = true" \
  "    listen = { \"inet:127.0.0.1:$PH\" }" "    rate_interval = 1h" "}"
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }
grep -q "hello: listening on inet:127.0.0.1:$PH" "$D/flusher.log" &&
  pass "hello port listening" || fail "hello port listening" "$(cat "$D/flusher.log")"

# hello SRC N - N connects from source address SRC; one word per
# connection: "closed" when the server closed without sending anything
hello() {
  python3 - "$1" "$PH" "$2" <<'PY'
import socket, sys
src, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    try:
        d = s.recv(100)
        out.append("closed" if d == b"" else "data:%r" % d)
    except socket.timeout:
        out.append("open")
    except ConnectionResetError:
        out.append("reset")
    s.close()
print(" ".join(out))
PY
}
msg() {
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nhello\r\n' "$1" "$1" >"$WORK/$1"
}
# wait_held DIR CUSTOMER N - until N messages are held
held_is() { [ "$(fl_held "$1" "$2")" = "$3" ]; }
wait_held() { wait_for 30 held_is "$@"; }

sink_start A "127.0.0.2:$PA" "$D/sinkA" || { fail "sink A" "$(cat "$D/sinkA.log")"; finish; exit 1; }
sink_start Q "127.0.0.4:$PA" "$D/sinkQ" || { fail "sink Q" "$(cat "$D/sinkQ.log")"; finish; exit 1; }
for t in h1 h2; do msg $t; fl_put "$D" acme "$WORK/$t" a@virt.dom; done
msg q1; fl_put "$D" quiet "$WORK/q1" x@quiet.example

# --- 1. an unknown address: closed, nothing triggered ---
out=$(hello 127.0.0.9 1)
[ "$out" = closed ] && pass "unknown address: closed at once (recv returns 0)" || fail "unknown: closed" "$out"
wait_log "$D/flusher.log" "hello from 127.0.0.9: not a registered address; closed" &&
  pass "unknown address: warning logged" || fail "unknown address: warning" "$(grep hello "$D/flusher.log")"
! grep -q "flush started" "$D/flusher.log" && [ "$(fl_held "$D" acme)" = 2 ] &&
  pass "unknown address: no flush" || fail "unknown address: no flush" "$(grep flush "$D/flusher.log")"

# --- 2. acme's address, ten times in a row: one flush, delivered there ---
out=$(hello 127.0.0.2 10)
[ "$out" = "closed closed closed closed closed closed closed closed closed closed" ] &&
  pass "ten connects from 127.0.0.2: each closed at once" || fail "ten connects closed" "$out"
wait_held "$D" acme 0 && pass "hello from 127.0.0.2: acme's spool drained" ||
  fail "acme drained" "$(fl_held "$D" acme)" "$(cat "$D/flusher.log")"
fl_idle "$D" acme
[ "$(ls "$D/sinkA" | wc -l)" = 2 ] && pass "2 messages at acme's sink on 127.0.0.2" ||
  fail "sink A got 2" "$(ls "$D/sinkA")"
n=$(grep -c "customer=acme: hello from 127.0.0.2: flush requested" "$D/flusher.log")
[ "$n" = 1 ] && pass "one trigger logged for ten connects" || fail "one trigger logged" "$n"
n=$(grep -c "customer=acme: flush started (pid [0-9]*, reason=hello, to=127.0.0.2)" "$D/flusher.log")
[ "$n" = 1 ] && pass "ten connects within rate_interval: one flush" || fail "one flush" "$n" "$(grep flush "$D/flusher.log")"

# --- 3. within rate_interval a new connect triggers nothing ---
msg h3; fl_put "$D" acme "$WORK/h3" a@virt.dom
out=$(hello 127.0.0.2 1)
sleep 1
[ "$out" = closed ] && [ "$(fl_held "$D" acme)" = 1 ] &&
  [ "$(grep -c "reason=hello, to=127.0.0.2" "$D/flusher.log")" = 1 ] &&
  pass "rate_interval: a later connect is ignored" || fail "rate_interval" "$out" "$(fl_held "$D" acme)"

# --- 4. a customer without trigger connect is not flushed ---
out=$(hello 127.0.0.4 1)
sleep 1
[ "$out" = closed ] && [ "$(fl_held "$D" quiet)" = 1 ] && ! grep -q "customer=quiet: flush started" "$D/flusher.log" &&
  pass "trigger etrn only: hello ignored" || fail "quiet ignored" "$out" "$(grep quiet "$D/flusher.log")"

# --- 5. the control socket still answers ---
run fl_raw "$D" "PING"
expect_line "PING after the hello traffic" out "OK"

fl_stop
finish
