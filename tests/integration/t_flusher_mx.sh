#!/bin/bash
# SPDX-License-Identifier: ISC
# t_flusher_mx.sh - "delivery mx" and its loop guard, with real DNS: a
# private dnsmasq (on 127.14.0.53:53) answers the MX queries, and the
# flusher runs in a mount namespace whose /etc/resolv.conf points at it.
# smtp-sinks stand for this host (127.0.0.1, an address of this host's
# interfaces), the customer's server (127.0.0.2) and a worse backup
# (127.0.0.4). Cases:
#   loop.test   MX 10 mx1 (127.0.0.1: us), 20 cust  -> nothing is ours to
#               try: "mail for loop.test loops back to myself", kept
#   named.test  MX 10 flusher.autoturn.test (our myhostname, another address)
#               -> loops too (recognised by name)
#   backup.test MX 10 cust, 20 us, 30 worse         -> only cust is used
#   nomx: delivery mx with an explicit domain whose MX names us -> loops
# In no case does anything arrive at "this host".
if [ -z "${AUTOTURN_MX_NS:-}" ]; then
  exec unshare --mount --propagation private env AUTOTURN_MX_NS=1 bash "$0" "$@"
fi
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"

DNS=127.14.0.53
D=$(fl_dir)
trap 'fl_stop; sink_stop US; sink_stop CUST; sink_stop WORSE; [ -n "${DNSMASQ_PID:-}" ] && kill "$DNSMASQ_PID";
      [ -n "${KEEP:-}" ] || rm -rf "$D" "$WORK"' EXIT
PORT=$(free_port)

printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$DNS" >"$D/resolv.conf"
mount --bind "$D/resolv.conf" /etc/resolv.conf || { fail "private resolv.conf"; finish; exit 1; }
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
  --listen-address="$DNS" --bind-interfaces --port=53 --user=nobody --group=nogroup --pid-file="$D/dnsmasq.pid" \
  --log-facility="$D/dnsmasq.log" --log-queries \
  --mx-host=loop.test,mx1.loop.test,10 --mx-host=loop.test,cust.loop.test,20 \
  --host-record=mx1.loop.test,127.0.0.1 --host-record=cust.loop.test,127.0.0.2 \
  --mx-host=named.test,flusher.autoturn.test,10 --host-record=flusher.autoturn.test,127.0.0.3 \
  --mx-host=backup.test,cust.backup.test,10 --mx-host=backup.test,us.backup.test,20 \
  --mx-host=backup.test,worse.backup.test,30 --host-record=cust.backup.test,127.0.0.2 \
  --host-record=us.backup.test,127.0.0.1 --host-record=worse.backup.test,127.0.0.4 \
  --mx-host=self.test,mx1.loop.test,5 &
DNSMASQ_PID=$!
for i in $(seq 1 50); do
  python3 -c 'import socket; socket.getaddrinfo("cust.loop.test", 25)' 2>/dev/null && break
  sleep 0.1
done
python3 -c 'import socket; socket.getaddrinfo("cust.loop.test", 25)' 2>/dev/null &&
  pass "private dnsmasq answers on $DNS" || { fail "dnsmasq" "$(cat "$D/dnsmasq.log")"; finish; exit 1; }

sink_start US "127.0.0.1:$PORT" "$D/us" || fail "sink for this host"
sink_start CUST "127.0.0.2:$PORT" "$D/cust" || fail "customer sink"
sink_start WORSE "127.0.0.4:$PORT" "$D/worse" || fail "worse backup sink"
fl_customers "$D" <<SRC || { fail "compile customers"; finish; exit 1; }
customer lp
    domain loop.test
    delivery mx
    port $PORT
customer nm
    domain named.test
    delivery mx
    port $PORT
customer bk
    domain backup.test
    delivery mx
    port $PORT
customer ex
    domain example.test
    delivery mx self.test
    port $PORT
SRC
fl_config "$D" "retry_interval = 0s"
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }

m() { printf 'From: <s@example.org>\r\nTo: <u@%s>\r\nSubject: mx %s\r\nMessage-ID: <mx-%s@example.org>\r\n\r\nbody\r\n' \
        "$1" "$1" "$1" >"$WORK/$1"; }
for c in lp:loop.test nm:named.test bk:backup.test ex:example.test; do
  m "${c#*:}" && fl_put "$D" "${c%%:*}" "$WORK/${c#*:}" "u@${c#*:}" || fail "hold for ${c%%:*}"
done

run fl_ctl "$D" flush lp --wait
expect "loop.test: we are the best MX: nothing sent, kept" 75 "delivered 0, deferred 1, bounced 0" \
  "flush lp: mail for loop.test loops back to myself (MX mx1.loop.test, preference 10, is this host)"
[ "$(fl_held "$D" lp)" = 1 ] && pass "loop.test: message kept" || fail "loop.test kept"
run fl_ctl "$D" flush nm --wait
expect "named.test: MX named like us: loops" 75 "delivered 0, deferred 1, bounced 0" \
  "flush nm: mail for named.test loops back to myself (MX flusher.autoturn.test, preference 10, is this host)"
run fl_ctl "$D" flush ex --wait
expect "delivery mx self.test: the named domain's MX is used, and it is us" 75 \
  "delivered 0, deferred 1, bounced 0" \
  "flush ex: mail for self.test loops back to myself (MX mx1.loop.test, preference 5, is this host)"
run fl_ctl "$D" flush bk --wait
expect "backup.test: delivered to the better MX" 0 "delivered 1, deferred 0, bounced 0"
grep -q ": to=<u@backup.test>\(, orig_queue_id=[^,]*\)\?, customer=bk, relay=cust.backup.test\[127.0.0.2\]:$PORT, .*status=sent" \
  "$D/flusher.log" && pass "backup.test: relay is cust.backup.test" ||
  fail "backup.test relay" "$(grep customer=bk "$D/flusher.log")"
grep -q "customer=bk: MX us.backup.test (preference 20) of backup.test is this host; MX hosts at or below that preference are not used" \
  "$D/flusher.log" && pass "backup.test: our own MX entry logged and cut" || fail "backup.test logged" "$(grep customer=bk "$D/flusher.log")"
[ -z "$(ls "$D/us")" ] && pass "nothing was delivered to this host" || fail "nothing to us" "$(ls "$D/us")"
[ -z "$(ls "$D/worse")" ] && pass "nothing to the MX below ours" || fail "nothing to worse" "$(ls "$D/worse")"
[ "$(ls "$D/cust" | wc -l)" = 1 ] && pass "one message at the customer's server" || fail "customer's server" "$(ls "$D/cust")"

fl_stop
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$D/flusher.log" &&
  fail "no sanitizer reports" "$(grep -E -A5 'Sanitizer|runtime error' "$D/flusher.log" | head -20)" ||
  pass "no sanitizer reports in the flusher's log"
finish
