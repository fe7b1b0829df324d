#!/bin/bash
# SPDX-License-Identifier: ISC
# t_flusher_more.sh - autoturn-flusher beyond the basics:
#  1. two flusher processes (two configurations, one spool, two control
#     sockets): while one runs a slow flush (smtp-sink -w 1), a FLUSH to
#     the other is refused as busy (the spool lock), and every message
#     reaches the sink exactly once;
#  2. a scripted peer with malformed replies (FAKE, see fake_peer below):
#     each flush stops cleanly with a log line, the mail stays held, the
#     flusher stays up;
#  3. a 50 MB message delivered byte for byte (sha256 of the body stored
#     vs the body smtp-sink wrote), then gone from the spool;
#  4. SIGHUP with a changed max_flushes: logged, in effect (STATUS), and
#     the daemon keeps delivering.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"

D=$(fl_dir) D2=$(fl_dir)
P1= P2= FAKE_PID=
stop_all() {
  local p
  for p in $P1 $P2 $FAKE_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  P1= P2= FAKE_PID=
  sink_stop A; sink_stop B
}
trap 'stop_all; rm -rf "$D" "$D2" "$WORK"' EXIT
PA=$(free_port) PF=$(free_port) PB=$(free_port)

fl_customers "$D" <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
    delivery host 127.0.0.2:$PA
    tls none
customer bad
    domain bad.example
    delivery host 127.0.0.4:$PF
    tls none
customer big
    domain big.example
    delivery host 127.0.0.5:$PB
    tls none
SRC
fl_config "$D" "retry_interval = 0s" "max_flushes = 20"
# section 1 holds a flush at its greeting while it checks things: a long wait
sed -i 's/greeting_timeout = 10s/greeting_timeout = 300s/' "$D/autoturn.conf"
# the second flusher: the same spool and table, its own control socket and log
mkdir -p "$D2/run"
sed "s|$D/run/flusher.sock|$D2/run/flusher.sock|" "$D/autoturn.conf" >"$D2/autoturn.conf"
fl_start "$D" || { fail "flusher 1 starts" "$(cat "$D/flusher.log")"; finish; exit 1; }
P1=$FL_PID
fl_start "$D2" || { fail "flusher 2 starts" "$(cat "$D2/flusher.log")"; finish; exit 1; }
P2=$FL_PID FL_PID=
pass "two flushers on one spool (pids $P1, $P2)"

# msg FILE TAG - a message with a unique Message-ID
msg() {
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nbody\r\n' \
    "$2" "$2" >"$1"
}
sink_ids() { cat "$@" 2>/dev/null | grep -h '^Message-ID:'; }

# --- 1. two processes, one spool: the lock holds ---
# the sink is stopped (SIGSTOP) until the second process has been tried:
# the first flush holds the lock, waiting for the greeting (300s)
sink_start A "127.0.0.2:$PA" "$D/sinkA" -w 1 || { fail "slow sink" "$(cat "$D/sinkA.log")"; finish; exit 1; }
for i in 1 2 3 4; do msg "$WORK/l$i" "l$i"; fl_put "$D" acme "$WORK/l$i" a@virt.dom; done
kill -STOP "$SINK_PID_A"
fl_ctl "$D" flush acme --wait >"$WORK/first.out" 2>&1 &
first=$!
wait_log "$D/flusher.log" 'customer=acme: flush of 4' || fail "first flush started" "$(tail -3 "$D/flusher.log")"
run fl_ctl "$D2" flush acme --wait
expect "second process: busy, exit 75" 75 "" "flush: a flush for this customer is already running (busy)"
wait_log "$D2/flusher.log" "customer=acme: a flush is already running in another process" &&
  pass "second process logs the lock" || fail "lock logged" "$(grep customer=acme "$D2/flusher.log")"
run fl_raw "$D2" "FLUSH customer=acme reason=connect"
expect_line "second process: a notification is accepted" out "OK queued=1"
kill -CONT "$SINK_PID_A"
wait "$first"
grep -q "delivered 4, deferred 0, bounced 0" "$WORK/first.out" && pass "first process delivered 4" ||
  fail "first process" "$(cat "$WORK/first.out")"
sleep 0.5
n=$(sink_ids "$D"/sinkA/*); total=$(printf '%s\n' "$n" | grep -c .); uniq=$(printf '%s\n' "$n" | sort -u | grep -c .)
[ "$total" = 4 ] && [ "$uniq" = 4 ] && [ "$(fl_held "$D" acme)" = 0 ] &&
  pass "every message arrived exactly once" || fail "exactly once" "total $total, unique $uniq"
kill -0 "$P1" && kill -0 "$P2" && pass "both flushers up" || fail "both flushers up"
sink_stop A

# --- 2. malformed replies ---
# fake_peer PORT - a FAKE SMTP server injecting faults no real peer
# produces, one per connection, in this order:
#   1 a greeting without a code         4 EHLO answered by endless "250-" lines
#   2 a 3-digit garbage greeting        5 EHLO answered by a 1 MB line
#   3 a 1 MB greeting line
# It logs each connection to stdout and ignores a client that goes away.
fake_peer() {
  python3 -u - "$1" <<'PY'
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.4", int(sys.argv[1])))
srv.listen(8)
print("listening")
faults = ["nocode", "garbage", "biggreeting", "endless", "bigline"]
for fault in faults:
    c, _ = srv.accept()
    print("connection", fault)
    try:
        c.settimeout(20)
        if fault == "nocode":
            c.sendall(b"hello there\r\n")
        elif fault == "garbage":
            c.sendall(b"99x garbage\r\n")
        elif fault == "biggreeting":
            c.sendall(b"220 " + b"x" * (1 << 20) + b"\r\n")
        else:
            c.sendall(b"220 fake ESMTP\r\n")
            c.recv(1024)                               # EHLO
            if fault == "endless":
                while True:
                    c.sendall(b"250-PIPELINING\r\n" * 64)
            else:
                c.sendall(b"250 " + b"y" * (1 << 20) + b"\r\n")
        c.recv(1024)                                   # QUIT, or EOF
    except OSError:
        pass
    c.close()
PY
}
fake_peer "$PF" >"$D/fake.log" 2>&1 &
FAKE_PID=$!
wait_log "$D/fake.log" listening 30 || fail "fake peer listening" "$(cat "$D/fake.log")"
msg "$WORK/bad1" bad1
fl_put "$D" bad "$WORK/bad1" u@bad.example
relay="127.0.0.4[127.0.0.4]:$PF"
for c in \
  "greeting without a code|no reply code in \"hello there\"" \
  "3-digit garbage|no reply code in \"99x garbage\"" \
  "1 MB greeting|line longer than 4096 bytes" \
  "endless continuation lines|more than 100 lines" \
  "1 MB line|line longer than 4096 bytes"; do
  label=${c%%|*} want=${c#*|}
  fl_idle "$D" bad
  run fl_ctl "$D" flush bad --wait
  expect "$label: flush stops, deferred, exit 75" 75 "delivered 0, deferred 1, bounced 0" "malformed reply from"
  [ "$(fl_held "$D" bad)" = 1 ] && pass "$label: mail kept" || fail "$label: mail kept"
done
for want in 'no reply code in "hello there"' 'no reply code in "99x garbage"' \
  'line longer than 4096 bytes' 'more than 100 lines'; do
  grep -qF "customer=bad: relay=$relay: malformed reply from $relay: $want" "$D/flusher.log" &&
    pass "logged: $want" || fail "logged: $want" "$(grep customer=bad "$D/flusher.log" | tail -5)"
done
run fl_raw "$D" "PING"
expect_line "flusher answers after the malformed peers" out "OK"
n=$(grep -cF "customer=bad: relay=$relay: malformed reply from $relay: line longer than 4096 bytes" "$D/flusher.log")
[ "$n" = 2 ] && pass "both 1 MB lines logged" || fail "both 1 MB lines logged" "$n"
kill -0 "$P1" && pass "flusher still up" || fail "flusher still up"

# --- 3. a 50 MB message, byte-exact ---
python3 - "$WORK/big" <<'PY'
import hashlib, sys
# 50 MB: 76-character lines of varied text, every 97th starting with '.',
# every 89th with 8-bit bytes, a few long (998-byte) lines
with open(sys.argv[1], 'wb') as f:
    f.write(b'From: <s@example.org>\r\nTo: <u@big.example>\r\nSubject: big\r\n'
            b'Message-ID: <big@example.org>\r\n\r\n')
    n, size = 0, 0
    while size < 50 * 1024 * 1024:
        h = hashlib.sha256(str(n).encode()).hexdigest()
        line = (h + h)[:76].encode()
        if n % 97 == 0:
            line = b'.' + line
        if n % 89 == 0:
            line = line[:40] + b'\xe9\xff\x80' + line[40:]
        if n % 1001 == 0:
            line = (h * 16)[:998].encode()
        f.write(line + b'\r\n')
        size += len(line) + 2
        n += 1
PY
fl_put "$D" big "$WORK/big" u@big.example || fail "store 50 MB"
sink_start B "127.0.0.5:$PB" "$D/sinkB" || fail "sink B"
run fl_ctl "$D" flush big --wait
expect "50 MB: delivered" 0 "delivered 1, deferred 0, bounced 0"
[ "$(fl_held "$D" big)" = 0 ] && pass "50 MB: gone from the spool" || fail "50 MB: gone from the spool"
res=$(python3 - "$WORK/big" "$D"/sinkB/* "$SRCDIR/tests/integration/lib" <<'PY'
import hashlib, sys
sys.path.insert(0, sys.argv[3])
from mailcheck import after_sink, strip_ours
want = open(sys.argv[1], 'rb').read().replace(b'\r\n', b'\n') + b'\n'
got = open(sys.argv[2], 'rb').read()
# smtp-sink prepends X-* lines and its Received: header; then ours
got = strip_ours(after_sink(got[got.index(b'\nReceived: ') + 1:]))[1]
print(hashlib.sha256(got).hexdigest() == hashlib.sha256(want).hexdigest(), len(got), len(want))
PY
)
[ "${res%% *}" = True ] && pass "50 MB: sha256 of the body matches (${res#* })" || fail "50 MB byte-exact" "$res"
sink_stop B
rm -f "$WORK/big" "$D"/sinkB/*

# --- 4. SIGHUP with a changed max_flushes ---
sed -i 's/max_flushes = 20/max_flushes = 7/' "$D/autoturn.conf"
kill -HUP "$P1"
wait_log "$D/flusher.log" "$D/autoturn.conf: reloaded" && pass "SIGHUP: reload logged" ||
  fail "reload logged" "$(tail -3 "$D/flusher.log")"
run fl_ctl "$D" status
expect "SIGHUP: max_flushes 7 in effect" 0 "of at most 7 flushes running"
sink_start A "127.0.0.2:$PA" "$D/sinkA2" || fail "sink A"
msg "$WORK/h1" h1; fl_put "$D" acme "$WORK/h1" a@virt.dom
fl_idle "$D" acme
run fl_ctl "$D" flush acme --wait
expect "after the reload: still delivering" 0 "delivered 1, deferred 0, bounced 0"
sed -i 's/max_flushes = 7/max_flushes = many/' "$D/autoturn.conf"
kill -HUP "$P1"
wait_log "$D/flusher.log" "$D/autoturn.conf: reload refused; keeping the running configuration" &&
  pass "SIGHUP with a broken file: refused, logged" || fail "reload refused" "$(tail -3 "$D/flusher.log")"
run fl_raw "$D" "STATUS"    # (autoturnctl itself refuses the broken file)
expect "broken reload: the old max_flushes stays" 0 "OK running=0 max=7 "

stop_all
for f in "$D/flusher.log" "$D2/flusher.log"; do
  grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$f" &&
    fail "no sanitizer reports in $f" "$(grep -E -A5 'Sanitizer|runtime error' "$f" | head -20)" ||
    pass "no sanitizer reports in ${f#$D}"
done
finish
