#!/bin/bash
# SPDX-License-Identifier: ISC
# t_flusher_grant.sh - grants as flush targets: autoturn-policyd (CHECK on
# its control socket) tells the flusher whether an address outside the
# customer's registered networks is granted to that customer. A grant for
# acme lets "flush acme --to" deliver there (smtp-sink on 127.0.0.7); a
# grant for another customer, for no customer, a grant tied to acme but
# from an untrusted source (one written before sources were recorded), no
# grant, or a policy service that is down: refused (exit 77), nothing
# sent. Both control sockets refuse a peer whose uid is not allowed
# (user daemon), although the sockets' mode lets it connect.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"
. "$SRCDIR/tests/integration/lib/policyd.sh"

D=$(fl_dir)
trap 'fl_stop; pd_stop; sink_stop G; rm -rf "$D" "$WORK"' EXIT
PA=$(free_port) PP=$(free_port)

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
    address 127.0.0.3
    delivery connecting-ip
    port $PA
    tls none
SRC
fl_config "$D" "retry_interval = 1h"
mkdir -p "$D/grants" && chown nobody "$D/grants"
# a grant from before sources were recorded: tied to acme, source unknown
printf 'GRANT ip=127.0.0.11 user=old customer=acme expires=%s\n' $(($(date +%s) + 3600)) \
  >"$D/grants/grants"
chown nobody "$D/grants/grants"
cat >>"$D/autoturn.conf" <<CONF
policyd {
    listen = { "inet:127.0.0.1:$PP" }
    control = "unix:$D/run/policyd-control.sock:0666"
    user = nobody
    grant_file = "$D/grants/grants"
}
CONF
pd_start "$D" || { fail "policyd starts" "$(cat "$D/policyd.log")"; finish; exit 1; }
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }
pass "policyd and flusher start from one configuration"

# pd_raw LINE - one line to policyd's control socket, the reply lines
pd_raw() {
  python3 - "$D/run/policyd-control.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
sys.stdout.write(data.decode())
PY
}
msg() {
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\ngrant\r\n' "$1" "$1" >"$WORK/$1"
}
sink_start G "127.0.0.7:$PA" "$D/sinkG" || { fail "sink G" "$(cat "$D/sinkG.log")"; finish; exit 1; }
sunk() { ls "$D/sinkG" | wc -l; }

# --- 1. CHECK on the policy service ---
run fl_ctl "$D" grant 127.0.0.7 --customer acme --ttl 1h
expect "grant 127.0.0.7 to acme" 0
run pd_raw "CHECK ip=127.0.0.7"
if printf '%s\n' "$OUT" | grep -Eqx "OK user= customer=acme source=control:root expires=[0-9]+"; then
  pass "CHECK: the live grant"; else fail "CHECK: the live grant" "$OUT"; fi
run pd_raw "CHECK ip=127.0.0.11"
expect_line "CHECK: a grant from the old grant file has source unknown" out \
  "OK user=old customer=acme source=unknown expires=$(sed -n 's/.*expires=//p' "$D/grants/grants" | head -1)"
run pd_raw "CHECK ip=127.0.0.8"
expect_line "CHECK: no grant" out "ERR code=not-found text=no%20live%20grant%20for%20127.0.0.8"
run pd_raw "CHECK"
expect_line "CHECK without ip=" out "ERR code=bad-request text=missing%20ip="
run pd_raw "CHECK ip=300.1.1.1"
expect "CHECK with a bad address" 0 "ERR code=bad-request text=bad%20ip%20address%20'300.1.1.1'"

# --- 2. granted to acme: delivered there ---
msg g1; fl_put "$D" acme "$WORK/g1" a@virt.dom
run fl_ctl "$D" flush acme --to 127.0.0.7 --wait
expect "flush acme --to a granted address: delivered" 0 "delivered 1, deferred 0, bounced 0"
[ "$(sunk)" = 1 ] && [ "$(fl_held "$D" acme)" = 0 ] && pass "the message is at 127.0.0.7" ||
  fail "message at 127.0.0.7" "$(sunk)" "$(fl_held "$D" acme)"
grep -q ": to=<a@virt.dom>\(, orig_queue_id=[^,]*\)\?, customer=acme, relay=127.0.0.7\[127.0.0.7\]:$PA, .*status=sent" "$D/flusher.log" &&
  pass "log: sent to 127.0.0.7" || fail "log: sent to 127.0.0.7" "$(grep status= "$D/flusher.log")"

# --- 3. refusals: nothing sent ---
msg g2; fl_put "$D" acme "$WORK/g2" a@virt.dom
run fl_ctl "$D" grant 127.0.0.8 --customer beta --ttl 1h
expect "grant 127.0.0.8 to beta" 0
run fl_ctl "$D" flush acme --to 127.0.0.8 --wait
expect "granted to another customer: refused" 77 "" "flush: 127.0.0.8 is not a registered address of acme, and its grant is for beta (not-authorised)"
run fl_ctl "$D" grant 127.0.0.10 --ttl 1h
run fl_ctl "$D" flush acme --to 127.0.0.10 --wait
expect "granted to no customer: refused" 77 "" "flush: 127.0.0.10 is not a registered address of acme, and its grant is for no customer (not-authorised)"
run fl_ctl "$D" flush acme --to 127.0.0.11 --wait
expect "granted to acme by an untrusted source: refused" 77 "" "flush: 127.0.0.11 is not a registered address of acme, and its grant comes from an untrusted source (unknown) (not-authorised)"
run fl_ctl "$D" flush acme --to 127.0.0.9 --wait
expect "no grant: refused" 77 "" "flush: 127.0.0.9 is not a registered address of acme, nor granted to it (not-authorised)"
run fl_raw "$D" "FLUSH customer=acme to=127.0.0.9 reason=etrn"
expect_line "FLUSH to= an ungranted address: ERR not-authorised" out "ERR code=not-authorised text=127.0.0.9%20is%20not%20a%20registered%20address%20of%20acme,%20nor%20granted%20to%20it"
run fl_ctl "$D" revoke 127.0.0.7
run fl_ctl "$D" flush acme --to 127.0.0.7 --wait
expect "revoked: refused" 77 "" "flush: 127.0.0.7 is not a registered address of acme, nor granted to it (not-authorised)"
# --- 4. control sockets: the peer's uid decides, not only the mode ---
chmod 0666 "$D/run/flusher.sock"
chmod 0755 "$D/run"
run runuser -u daemon -- python3 - "$D/run/policyd-control.sock" "$D/run/flusher.sock" <<'PY'
import socket, sys
for path, line in ((sys.argv[1], b"GRANT ip=127.0.0.12 customer=acme\n"),
                   (sys.argv[2], b"FLUSH customer=acme to=127.0.0.12 reason=etrn\n")):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(line)
    except OSError:
        pass
    data = b""
    while True:
        try:
            d = s.recv(4096)
        except OSError:
            break
        if not d:
            break
        data += d
    print(data.decode().strip())
PY
expect_line "policyd control: uid daemon refused" out \
  "ERR code=forbidden text=not%20root,%20an%20autoturn%20daemon's%20user%20or%20in%20policyd.control_users"
expect_line "flusher control: uid daemon refused" out \
  "ERR code=forbidden text=not%20root,%20an%20autoturn%20daemon's%20user%20or%20in%20flusher.control_users"
run pd_raw "CHECK ip=127.0.0.12"
expect_line "the refused GRANT made no grant" out "ERR code=not-found text=no%20live%20grant%20for%20127.0.0.12"
wait_log "$D/policyd.log" "control: connection from daemon \\(pid [0-9]*\\) refused: not root, an autoturn daemon's user or in control_users" &&
  pass "policyd logs the refused peer" || fail "policyd logs the refused peer" "$(tail -3 "$D/policyd.log")"
wait_log "$D/flusher.log" "control: connection from daemon \\(pid [0-9]*\\) refused: not root, an autoturn daemon's user or in control_users" &&
  pass "flusher logs the refused peer" || fail "flusher logs the refused peer" "$(tail -3 "$D/flusher.log")"

run fl_ctl "$D" grant 127.0.0.7 --customer acme --ttl 1h
pd_stop
run fl_ctl "$D" flush acme --to 127.0.0.7 --wait
expect "policy service down: refused" 77 "" "flush: 127.0.0.7 is not a registered address of acme, and its grants cannot be checked (policy service: connect to $D/run/policyd-control.sock: "
grep -q "customer=acme: flush refused: 127.0.0.7 is not a registered address of acme, and its grants cannot be checked" "$D/flusher.log" &&
  pass "policy service down: the refusal is logged" || fail "refusal logged" "$(grep refused "$D/flusher.log")"
sleep 0.5
[ "$(sunk)" = 1 ] && [ "$(fl_held "$D" acme)" = 1 ] && pass "refused: nothing sent, message kept" ||
  fail "refused: nothing sent" "$(sunk)" "$(fl_held "$D" acme)"

fl_stop
finish
