#!/bin/bash
# SPDX-License-Identifier: ISC
# t_flusher_tls.sh - STARTTLS from autoturn-flusher to a real peer: a
# private Postfix with a self-signed certificate (smtpd_tls_security_level
# = may) listens on 127.0.0.2 as the customer's server and relays the
# customer's domain on to an smtp-sink on 127.0.0.1. Customers with
# "tls may" and "tls encrypt" both deliver over TLS (the Postfix maillog
# shows the TLS session, the sink shows Postfix's Received: line "using
# TLS..." and the body byte for byte); "tls encrypt" against a plain
# smtp-sink (no STARTTLS) sends nothing, keeps the message and the flush
# reports the TLS error; "tls none" stays in plain text although offered.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"

D=$(fl_dir)
P="$D/pf"
trap 'fl_stop; pf_stop "$P"; sink_stop R; sink_stop S; [ -n "${KEEP:-}" ] || rm -rf "$D" "$WORK"' EXIT
PP=$(free_port) PR=$(free_port) PS=$(free_port)

# --- the customer's server: Postfix with TLS on 127.0.0.2:PP ---
pf_new "$P" "$PP"
sed -i "s/^127\.0\.0\.1:$PP /127.0.0.2:$PP /" "$P/conf/master.cf"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
  -keyout "$P/key.pem" -out "$P/cert.pem" >/dev/null 2>&1 || { fail "openssl req"; finish; exit 1; }
pf_set "$P" \
  "smtpd_tls_cert_file = $P/cert.pem" "smtpd_tls_key_file = $P/key.pem" \
  "smtpd_tls_security_level = may" "smtpd_tls_loglevel = 1" "smtpd_tls_received_header = yes" \
  "relay_domains = may.example encrypt.example none.example" \
  "transport_maps = inline:{ may.example=smtp:[127.0.0.1]:$PR, encrypt.example=smtp:[127.0.0.1]:$PR, none.example=smtp:[127.0.0.1]:$PR }"
sink_start R "127.0.0.1:$PR" "$D/sinkR" || { fail "relay sink" "$(cat "$D/sinkR.log")"; finish; exit 1; }
pf_start "$P" >"$D/pf-start.log" 2>&1 && wait_port 127.0.0.2 "$PP" ||
  { fail "private Postfix with TLS starts" "$(cat "$D/pf-start.log")"; finish; exit 1; }
pass "private Postfix with TLS on 127.0.0.2:$PP"

fl_customers "$D" <<SRC || { fail "compile customers"; finish; exit 1; }
customer tmay
    domain may.example
    delivery host 127.0.0.2:$PP
    tls may
customer tenc
    domain encrypt.example
    delivery host 127.0.0.2:$PP
    tls encrypt
customer tnone
    domain none.example
    delivery host 127.0.0.2:$PP
    tls none
customer plain
    domain plain.example
    delivery host 127.0.0.3:$PS
    tls encrypt
SRC
fl_config "$D" "retry_interval = 0s"
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }

# msg FILE TAG RCPT - a message with a unique Message-ID and an 8-bit line
msg() {
  printf 'From: <s@example.org>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s\r\n.dot line\r\n%s\r\n' \
    "$3" "$2" "$2" "body of $2" "$(printf '8-bit \xe9')" >"$1"
}
# wait_sink TAG - until the relay sink has the message (Postfix relays it on)
wait_sink() {
  local i
  for i in $(seq 1 100); do
    grep -lq "^Message-ID: <$1@example.org>" "$D"/sinkR/* 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# tls_received TAG - the copy at the sink came to Postfix over TLS
tls_received() {
  local f
  f=$(grep -l "^Message-ID: <$1@example.org>" "$D"/sinkR/* 2>/dev/null | head -1)
  [ -n "$f" ] && grep -A3 '^Received: from flusher.autoturn.test' "$f" | grep -q 'using TLS'
}
# same_body TAG FILE - the body at the sink equals the stored one (Postfix
# adds a Date: header, so only the body is compared)
same_body() {
  local f
  f=$(grep -l "^Message-ID: <$1@example.org>" "$D"/sinkR/* 2>/dev/null | head -1)
  [ -n "$f" ] && python3 - "$f" "$2" <<'PY'
import sys
got = open(sys.argv[1], 'rb').read()
want = open(sys.argv[2], 'rb').read().replace(b'\r\n', b'\n')
# the sink ends each message with an empty line of its own
sys.exit(0 if got.endswith(b'\n\n' + want.split(b'\n\n', 1)[1] + b'\n') else 1)
PY
}

# --- 1. tls may and tls encrypt: delivered over TLS ---
for c in tmay:may tenc:encrypt; do
  cust=${c%:*} dom=${c#*:}
  msg "$WORK/$cust" "$cust" "u@$dom.example"
  fl_put "$D" "$cust" "$WORK/$cust" "u@$dom.example"
  before=$(grep -c 'TLS connection established from' "$P/log/maillog" 2>/dev/null)
  run fl_ctl "$D" flush "$cust" --wait
  expect "tls $dom: delivered" 0 "delivered 1, deferred 0, bounced 0"
  [ "$(fl_held "$D" "$cust")" = 0 ] && pass "tls $dom: spool empty" || fail "tls $dom: spool empty"
  # Postfix's log goes through postlogd: it may come a moment later
  more_tls() { [ "$(grep -c 'TLS connection established from' "$P/log/maillog" 2>/dev/null)" -gt "${before:-0}" ]; }
  wait_for 30 more_tls && pass "tls $dom: Postfix logs a TLS connection" ||
    fail "tls $dom: TLS in the maillog" "$(grep -i tls "$P/log/maillog" | tail -3)"
  if wait_sink "$cust"; then
    tls_received "$cust" && pass "tls $dom: Postfix's Received: line says TLS" ||
      fail "tls $dom: Received: using TLS" "$(grep -h -A3 '^Received: from flusher' "$D"/sinkR/* | head -8)"
    same_body "$cust" "$WORK/$cust" && pass "tls $dom: body byte-exact through TLS" ||
      fail "tls $dom: body byte-exact"
  else
    fail "tls $dom: relayed on to the sink" "$(tail -5 "$P/log/maillog")"
  fi
done
grep -q ": to=<u@encrypt.example>\(, orig_queue_id=[^,]*\)\?, customer=tenc, relay=127.0.0.2\[127.0.0.2\]:$PP, delay=[0-9]*, dsn=[0-9.]*, status=sent (250 " \
  "$D/flusher.log" && pass "tls encrypt: log line per recipient" ||
  fail "tls encrypt: log line" "$(grep status= "$D/flusher.log" | tail -2)"

# --- 2. tls none: plain text although STARTTLS is offered ---
msg "$WORK/tnone" tnone u@none.example
fl_put "$D" tnone "$WORK/tnone" u@none.example
before=$(grep -c 'TLS connection established from' "$P/log/maillog")
run fl_ctl "$D" flush tnone --wait
expect "tls none: delivered" 0 "delivered 1, deferred 0, bounced 0"
if wait_sink tnone; then
  ! tls_received tnone && [ "$(grep -c 'TLS connection established from' "$P/log/maillog")" = "$before" ] &&
    pass "tls none: no STARTTLS" || fail "tls none: no STARTTLS"
else
  fail "tls none: relayed on to the sink"
fi

# --- 3. tls encrypt against a plain smtp-sink: nothing sent, kept, error reported ---
sink_start S "127.0.0.3:$PS" "$D/sinkS" || fail "plain sink"
msg "$WORK/plain" plain u@plain.example
fl_put "$D" plain "$WORK/plain" u@plain.example
run fl_ctl "$D" flush plain --wait
expect "tls encrypt, no STARTTLS: deferred, exit 75" 75 "delivered 0, deferred 1, bounced 0" \
  "flush plain: TLS required but not offered by 127.0.0.3[127.0.0.3]:$PS"
[ "$(fl_held "$D" plain)" = 1 ] && pass "tls encrypt, no STARTTLS: message kept" ||
  fail "tls encrypt, no STARTTLS: message kept"
[ -z "$(ls "$D/sinkS")" ] && pass "tls encrypt, no STARTTLS: nothing at the sink" ||
  fail "nothing at the plain sink" "$(ls "$D/sinkS")"
grep -q "customer=plain: relay=127.0.0.3\[127.0.0.3\]:$PS: TLS required but not offered by 127.0.0.3\[127.0.0.3\]:$PS" \
  "$D/flusher.log" && pass "tls encrypt, no STARTTLS: logged" ||
  fail "TLS error logged" "$(grep customer=plain "$D/flusher.log")"

fl_stop
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$D/flusher.log" &&
  fail "no sanitizer reports" "$(grep -E -A5 'Sanitizer|runtime error' "$D/flusher.log" | head -20)" ||
  pass "no sanitizer reports in the flusher's log"
finish
