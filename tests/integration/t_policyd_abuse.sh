#!/bin/bash
# SPDX-License-Identifier: ISC
# t_policyd_abuse.sh - autoturn-policyd against a hostile or broken peer,
# directly on its policy socket: oversized request, binary garbage, EOF in
# the middle of a request, 10,000 connections opened and dropped, a client
# stuck in the middle of a request while 200 others are answered, and a
# restart with grants present (they survive).
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/policyd.sh"
chmod 755 "$WORK"   # the daemon runs as nobody
D=$WORK/pd
P=$(free_port)
trap 'pd_stop; flusher_stop; rm -rf "$WORK"' EXIT
pd_setup "$D" "$P" "customer acme
    domain virt.dom
    address 127.0.0.2
    trigger connect etrn
    relay yes" "max_line = 512
    max_attributes = 20
    max_connections = 15000" || { fail "setup"; finish; exit; }
flusher_start "$D"
pd_start "$D" || { fail "start" "$(cat "$D/policyd.log")"; finish; exit; }

# abuse PYTHON-SNIPPET: run with sock() helper; prints what it observed
abuse() {
  python3 - "$P" "$1" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def sock():
    return socket.create_connection(("127.0.0.1", port), timeout=30)
pending = {}
def reply_or_eof(s):
    # one reply (several may arrive in one segment: keep the rest)
    buf = pending.pop(s, b"")
    while b"\n\n" not in buf:
        d = s.recv(4096)
        if not d:
            return "EOF" + (" after " + repr(buf) if buf else "")
        buf += d
    one, rest = buf.split(b"\n\n", 1)
    if rest:
        pending[s] = rest
    return one.decode().strip()
REQ = b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.2\nrecipient=a@example.org\n\n"
exec(sys.argv[2])
PY
}

run abuse 's = sock(); s.sendall(b"request=smtpd_access_policy\nrecipient=" + b"x" * 600 + b"\n\n"); print(reply_or_eof(s))'
expect_line "oversized line: disconnected without a reply" out "EOF"
grep -q "policy protocol violation: attribute line longer than 512 bytes; disconnecting" "$D/policyd.log" \
  && pass "oversized line: logged" || fail "oversized line: logged" "$(tail -3 "$D/policyd.log")"

run abuse 's = sock(); s.sendall(REQ.replace(b"\n\n", b"\n") + b"".join(b"a%d=1\n" % i for i in range(30)) + b"\n"); print(reply_or_eof(s))'
expect_line "too many attributes: disconnected without a reply" out "EOF"

run abuse 's = sock(); s.sendall(bytes(range(256)) * 8); print(reply_or_eof(s))'
expect_line "binary garbage: disconnected without a reply" out "EOF"
grep -q "policy protocol violation: control character 0x00 in request; disconnecting" "$D/policyd.log" \
  && pass "binary garbage: logged" || fail "binary garbage: logged"

run abuse 's = sock(); s.sendall(REQ[:40]); s.shutdown(socket.SHUT_WR); print(reply_or_eof(s))'
expect_line "EOF mid-request: no half reply" out "EOF"
wait_log "$D/policyd.log" "connection closed in the middle of a request" \
  && pass "EOF mid-request: logged" || fail "EOF mid-request: logged"

run abuse 's = sock(); s.sendall(REQ + REQ[:10]); r1 = reply_or_eof(s); s.sendall(REQ[10:] + REQ); print(r1, "|", reply_or_eof(s), "|", reply_or_eof(s))'
expect_line "split and pipelined requests on one connection" out "action=OK | action=OK | action=OK"

run abuse '
socks = []
for i in range(10000):
    try:
        socks.append(sock())
    except OSError as e:
        print("connect failed", i, e); break
    if len(socks) >= 500:
        for x in socks: x.close()
        socks = []
for x in socks: x.close()
s = sock(); s.sendall(REQ); print(reply_or_eof(s))'
expect_line "10,000 connections opened and dropped: still answers" out "action=OK"

# A client stuck in the middle of a request must not hold up the others:
# its request stays unfinished until 200 other requests were answered
# (were the daemon waiting for it, they would never be: each socket gives
# up after 30 s), then it is finished and answered too. No clock involved.
run abuse '
slow = sock()
for b in REQ[:6]:
    slow.sendall(bytes([b])); time.sleep(0.05)
for i in range(200):
    s = sock(); s.sendall(REQ); r = reply_or_eof(s); s.close()
    assert r == "action=OK", r
slow.sendall(REQ[6:])
print("others ok, then the slow one:", reply_or_eof(slow))'
expect_line "a client stuck mid-request: 200 others answered meanwhile, then it too" out \
  "others ok, then the slow one: action=OK"

# restart with grants present: granted by hand, by SMTP AUTH, and one revoked
run "$AUTOTURNCTL" -c "$D/autoturn.conf" grant 127.0.0.50 --user roamer --ttl 1h
expect "grant by hand" 0 "granted 127.0.0.50 until "
run policy_ask "$D/policy.sock" protocol_state=RCPT client_address=127.0.0.51 sasl_username=joe@virt.dom recipient=a@example.org
expect_line "grant by SMTP AUTH (a trusted peer: root on the unix: socket)" out "OK"
"$AUTOTURNCTL" -c "$D/autoturn.conf" grant 127.0.0.52 >/dev/null
"$AUTOTURNCTL" -c "$D/autoturn.conf" revoke 127.0.0.52 >/dev/null
kill -KILL "$PD_PID"; wait "$PD_PID" 2>/dev/null; PD_PID=
pd_start "$D"
run "$AUTOTURNCTL" -c "$D/autoturn.conf" grants
expect "after kill -9: hand grant survives (journal)" 0 "127.0.0.50"
expect "after kill -9: SMTP AUTH grant survives, tied to its customer" 0 "joe@virt.dom"
[[ "$OUT" == *"127.0.0.52"* ]] && fail "after kill -9: revoked grant stays revoked" "$OUT" \
  || pass "after kill -9: revoked grant stays revoked"
pd_stop
[ "$PD_RC" = 0 ] && pass "SIGTERM: clean exit" || fail "SIGTERM: clean exit" "rc=$PD_RC"
[ ! -s "$D/grants/grants.journal" ] && grep -q "ip=127.0.0.50 user=roamer" "$D/grants/grants" \
  && pass "SIGTERM: snapshot written, journal emptied" \
  || fail "SIGTERM: snapshot written, journal emptied" "$(cat "$D/grants/grants")"
pd_start "$D"
run policy_ask "$P" protocol_state=RCPT client_address=127.0.0.50 recipient=a@example.org
expect_line "after a clean restart: grant still lets 127.0.0.50 relay" out "OK"
run "$AUTOTURNCTL" -c "$D/autoturn.conf" revoke 127.0.0.50
expect "revoke" 0 "revoked 127.0.0.50"
run policy_ask "$P" protocol_state=RCPT client_address=127.0.0.50 recipient=a@example.org
expect_line "after revoke: no relay" out "DUNNO"
# one decision line per request at info; log_decisions = false (reloaded)
# leaves them out, the answers stay the same
decided() { grep -c "action=DUNNO, reason=no grant, client_address=127.0.0.50, protocol_state=RCPT, recipient=a@example.org$" "$D/policyd.log"; }
all_decisions() { grep -c ": action=" "$D/policyd.log"; }
wait_for 30 eval '[ "$(decided)" -ge 1 ]'
n=$(decided)
[ "$n" -ge 1 ] && pass "the decision is logged: action=DUNNO, reason=no grant" ||
  fail "decision line" "$(grep 'action=' "$D/policyd.log" | tail -3)"
sed -i 's/^\(    max_connections = 15000\)$/\1\n    log_decisions = false/' "$D/autoturn.conf"
r=$(grep -c ': reloaded' "$D/policyd.log")
kill -HUP "$PD_PID"
wait_for 30 eval "[ \"\$(grep -c ': reloaded' '$D/policyd.log')\" -gt $r ]" ||
  fail "reload with log_decisions = false" "$(tail -3 "$D/policyd.log")"
m=$(all_decisions)
run policy_ask "$P" protocol_state=RCPT client_address=127.0.0.50 recipient=a@example.org
expect_line "log_decisions = false: same answer" out "DUNNO"
run policy_ask "$P" protocol_state=RCPT client_address=127.0.0.2 recipient=a@example.org
expect_line "log_decisions = false: a registered network still relays" out "OK"
[ "$(decided)" = "$n" ] && [ "$(all_decisions)" = "$m" ] &&
  pass "log_decisions = false: no decision lines" || fail "no decision lines" "$(grep 'action=' "$D/policyd.log" | tail -3)"
pd_stop
run "$AUTOTURNCTL" -c "$D/autoturn.conf" grants
expect "daemon down: grants exits 69" 69 "" "autoturnctl: autoturn-policyd does not answer: connect to $D/control.sock"
grep -E "ERROR: AddressSanitizer|runtime error" "$D/policyd.log" && fail "sanitizers quiet" || pass "sanitizers quiet"
finish
