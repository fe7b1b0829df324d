#!/bin/bash
# SPDX-License-Identifier: ISC
# t_ipv6.sh - IPv6 customers, and "inet:*:PORT" as one dual-stack socket.
# The test runs in a private network namespace of its own (unshare -n:
# loopback only, 127.0.0.1 and ::1), so the flusher can keep the DEFAULT
# Hello and ODMR listeners (inet:*:1789, inet:*:366) without meeting
# anything else on this machine:
#   - Hello port: a connect from ::1 flushes the customer registered as
#     ::1 to [::1] (its smtp-sink listens there); a connect from 127.0.0.2
#     to the same socket flushes the IPv4 customer to 127.0.0.2 (an IPv4
#     client of a dual-stack socket is seen as IPv4, never ::ffff:...);
#   - ODMR: fetchmail connects over ::1 to the default port, AUTH, ATRN,
#     and the held mail reaches its SMTP server;
#   - policy service on inet:*: a request over ::1 for client ::1 (the
#     customer's address) relays (OK) and its AutoTURN notice flushes the
#     customer to ::1; an unknown IPv6 client gets DUNNO; a request over
#     127.0.0.1 is served by the same socket;
#   - milter on inet:*: libmilter listens dual-stack (inet6) and answers
#     an option negotiation over ::1 and over 127.0.0.1.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"
. "$SRCDIR/tests/integration/lib/policyd.sh"
. "$SRCDIR/tests/integration/lib/odmr.sh"
MILTER=$BUILDDIR/milter/autoturn-milter
od_user || { fail "user autoturn-odmr (odmr.user)"; finish; exit 1; }

if [ -z "${AUTOTURN_TEST_NETNS:-}" ]; then
  AUTOTURN_TEST_NETNS=1 exec unshare -n -- bash "$0" "$@"
fi
ip link set lo up || { fail "lo up in the private network namespace"; finish; exit 1; }
if ! python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
  echo "no IPv6 loopback (::1) here: nothing to test"
  pass "skipped: no IPv6"
  finish; exit 0
fi

D=$(fl_dir)
MT_PID=
trap 'fl_stop; pd_stop; [ -n "$MT_PID" ] && kill "$MT_PID" 2>/dev/null && wait "$MT_PID"; sink_stop S6; sink_stop S4; sink_stop SM; rm -rf "$D" "$WORK"' EXIT
PA=$(free_port) PP=$(free_port) PM=$(free_port) SMTPPORT=$(free_port)
SECRET=$(printf secret6 | "$AUTOTURNCTL" secret)

fl_customers "$D" <<SRC || { fail "compile customers"; finish; exit 1; }
customer v6cust
    domain v6.example
    address ::1
    delivery connecting-ip
    port $PA
    tls none
    trigger connect etrn
    relay yes
customer v4cust
    domain v4.example
    address 127.0.0.2
    delivery connecting-ip
    port $PA
    tls none
    trigger connect
customer odmr6
    domain odmr6.example
    delivery host 127.0.0.9:25
    tls none
    trigger atrn
    secret $SECRET
SRC
fl_config "$D" "retry_interval = 0s" "hello {" "    enable = true" "}" "odmr {" "    enable = true" "}"
mkdir -p "$D/grants" && chown nobody "$D/grants"
cat >>"$D/autoturn.conf" <<CONF
policyd {
    listen = { "inet:*:$PP" }
    control = "unix:$D/run/policyd-control.sock:0660"
    user = nobody
    grant_file = "$D/grants/grants"
}
milter {
    listen = { "inet:*:$PM" }
    user = nobody
}
CONF
run "$AUTOTURNCTL" -c "$D/autoturn.conf" config flusher.hello.listen flusher.odmr.listen
[ "$OUT" = "flusher.hello.listen = inet:*:1789
flusher.odmr.listen = inet:*:366" ] && pass "the flusher keeps the default Hello and ODMR listeners" ||
  fail "default listeners" "$OUT"
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }
grep -q "hello: listening on inet:\*:1789" "$D/flusher.log" && grep -q "odmr: listening on inet:\*:366" "$D/flusher.log" &&
  pass "Hello and ODMR listening on inet:*:1789 and inet:*:366" || fail "listening" "$(cat "$D/flusher.log")"

sink_start S6 "[::1]:$PA" "$D/sink6" -6 || { fail "smtp-sink on [::1]:$PA" "$(cat "$D/sink6.log" 2>/dev/null)"; finish; exit 1; }
sink_start S4 "127.0.0.2:$PA" "$D/sink4" || { fail "smtp-sink on 127.0.0.2:$PA"; finish; exit 1; }
msg() { printf 'From: <s@example.org>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s\r\n' "$1" "$1" "$1" >"$WORK/$1"; }
count() { find "$1" -type f 2>/dev/null | wc -l; }
wait_count() {  # DIR N: up to 20 s
  local i; for i in $(seq 1 200); do [ "$(count "$1")" = "$2" ] && return 0; sleep 0.1; done; return 1
}
wait_log() {    # FILE REGEX: up to 20 s
  local i; for i in $(seq 1 200); do grep -Eq -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}
knock() {  # knock SRC DST PORT: connect, read until the server closes
  python3 - "$1" "$2" "$3" <<'PY'
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam)
s.settimeout(5)
s.bind((src, 0))
s.connect((dst, port))
print("closed" if s.recv(100) == b"" else "data")
PY
}

# --- 1. Hello port over ::1, and IPv4 on the same socket ---
msg h6; fl_put "$D" v6cust "$WORK/h6" a@v6.example
msg h4; fl_put "$D" v4cust "$WORK/h4" a@v4.example
run knock ::1 ::1 1789
expect_line "Hello port: ::1 connects to [::1]:1789, closed at once" out closed
wait_log "$D/flusher.log" 'customer=v6cust: flush started \(pid [0-9]+, reason=hello, to=::1\)' &&
  pass "Hello from ::1: v6cust flushed to ::1" || fail "hello v6 flush" "$(grep -E 'hello|flush' "$D/flusher.log")"
wait_count "$D/sink6" 1 && grep -q '^Subject: h6' "$D"/sink6/* && [ "$(fl_held "$D" v6cust)" = 0 ] &&
  pass "h6 delivered to [::1]:$PA, spool empty" || fail "h6 at the IPv6 sink" "$(count "$D/sink6")" "$(grep -E 'v6cust' "$D/flusher.log")"
run knock 127.0.0.2 127.0.0.1 1789
expect_line "Hello port: 127.0.0.2 connects to the same socket over IPv4" out closed
wait_log "$D/flusher.log" 'customer=v4cust: flush started \(pid [0-9]+, reason=hello, to=127\.0\.0\.2\)' &&
  pass "Hello from 127.0.0.2 on the dual-stack socket: seen as IPv4, v4cust flushed to 127.0.0.2" ||
  fail "hello v4 flush" "$(grep -E 'hello|flush' "$D/flusher.log")"
! grep -q 'ffff' "$D/flusher.log" && pass "no ::ffff: address in the log" || fail "mapped address logged" "$(grep ffff "$D/flusher.log")"
wait_count "$D/sink4" 1 && pass "h4 delivered to 127.0.0.2:$PA" || fail "h4 at the IPv4 sink"

# --- 2. ODMR over ::1 on the default port, with fetchmail ---
msg o1; fl_put "$D" odmr6 "$WORK/o1" u@odmr6.example
sink_start SM "127.0.0.1:$SMTPPORT" "$D/sinkm" || { fail "smtp-sink for fetchmail"; finish; exit 1; }
home=$D/fetchmail && mkdir -p "$home" && chmod 0700 "$home"
printf 'poll "::1" protocol ODMR service 366 user "odmr6" password "secret6" fetchdomains odmr6.example smtphost 127.0.0.1/%s\n' \
  "$SMTPPORT" >"$home/rc"
chmod 0600 "$home/rc"
FM_OUT=$(FETCHMAILHOME=$home timeout 120 fetchmail -v --pidfile "$home/pid" -f "$home/rc" 2>&1); FM_RC=$?
[ "$FM_RC" = 0 ] && pass "fetchmail ODMR over ::1: exit 0" || fail "fetchmail over ::1" "rc $FM_RC" "$FM_OUT"
wait_count "$D/sinkm" 1 && grep -q '^Subject: o1' "$D"/sinkm/* && [ "$(fl_held "$D" odmr6)" = 0 ] &&
  pass "ODMR over ::1: o1 reached fetchmail's SMTP server, spool empty" || fail "o1 delivered" "$FM_OUT"
grep -Eq 'odmr: client=\[::1\]:[0-9]+: connected' "$D/flusher.log" && pass "ODMR log: client=[::1]:PORT" ||
  fail "ODMR client logged" "$(grep odmr "$D/flusher.log")"

# --- 3. policy service on inet:*:PORT ---
"$POLICYD" -f -c "$D/autoturn.conf" 2>>"$D/policyd.log" &
PD_PID=$!
wait_port 127.0.0.1 "$PP" || { fail "policyd starts" "$(cat "$D/policyd.log")"; finish; exit 1; }
ask() {  # ask HOST CLIENT_ADDRESS: one relay request over HOST, prints the action
  python3 - "$1" "$PP" "$2" <<'PY'
import socket, sys
host, port, client = sys.argv[1], int(sys.argv[2]), sys.argv[3]
req = ("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
       "client_address=%s\nclient_name=unknown\nhelo_name=client.example\n"
       "sender=s@example.org\nrecipient=r@elsewhere.example\n\n" % client)
s = socket.create_connection((host, port), timeout=10)
s.sendall(req.encode())
buf = b""
while not buf.endswith(b"\n\n"):
    d = s.recv(4096)
    if not d:
        break
    buf += d
print(buf.decode().strip())
PY
}
msg p6; fl_put "$D" v6cust "$WORK/p6" b@v6.example
run ask ::1 ::1
expect_line "policy over ::1, client ::1 (v6cust, relay yes): OK" out "action=OK"
wait_log "$D/flusher.log" 'customer=v6cust: flush started \(pid [0-9]+, reason=connect, to=::1\)' &&
  pass "policyd's AutoTURN notice for ::1 flushes v6cust to ::1" || fail "policyd notice" "$(grep v6cust "$D/flusher.log")" "$(cat "$D/policyd.log")"
wait_count "$D/sink6" 2 && pass "p6 delivered to [::1]:$PA" || fail "p6 at the IPv6 sink"
run ask ::1 2001:db8::99
expect_line "policy over ::1, unknown IPv6 client: DUNNO" out "action=DUNNO"
run ask 127.0.0.1 ::1
expect_line "policy over 127.0.0.1 (same dual-stack socket), client ::1: OK" out "action=OK"

# --- 4. milter on inet:*:PORT ---
"$MILTER" -f -c "$D/autoturn.conf" >>"$D/milter.log" 2>&1 &
MT_PID=$!
wait_log "$D/milter.log" "starting: listening on inet6:$PM," &&
  pass "milter: inet:*:$PM is libmilter's inet6:$PM (dual-stack)" || fail "milter listening" "$(cat "$D/milter.log")"
optneg() {  # optneg HOST: a libmilter option negotiation; prints "O version N"
  python3 - "$1" "$PM" <<'PY'
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(struct.pack(">I", 13) + b"O" + struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
head = b""
while len(head) < 4:
    head += s.recv(4 - len(head))
n = struct.unpack(">I", head)[0]
body = b""
while len(body) < n:
    body += s.recv(n - len(body))
print("%s version %d" % (body[:1].decode(), struct.unpack(">I", body[1:5])[0]))
PY
}
run optneg ::1
expect_line "milter answers an option negotiation over ::1" out "O version 6"
run optneg 127.0.0.1
expect_line "milter answers an option negotiation over 127.0.0.1" out "O version 6"

finish
