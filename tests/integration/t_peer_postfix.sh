#!/bin/bash
# SPDX-License-Identifier: ISC
# t_peer_postfix.sh - autoturn-flusher delivering to a real Postfix smtpd
# with STARTTLS as the customer's server (a private instance on 127.0.0.2
# with a self-signed certificate, delivering virt.dom into a maildir with
# its virtual agent): the cases of lib/peer_cases.sh in one flush over
# TLS, with BDAT (Postfix offers CHUNKING, PIPELINING, SMTPUTF8, DSN: the
# NOTIFY=SUCCESS request reaches Postfix, which reports the delivery
# itself). Then ODMR: fetchmail relays the turned-around session into
# this Postfix, which offers STARTTLS: the flusher must not start TLS
# through fetchmail, and the mail arrives; and a customer with "tls
# encrypt" gets ATRN only after STARTTLS on the ODMR port. Last, the
# bounces decided here, with their exact codes: larger than Postfix's SIZE
# (5.3.4), and 8-bit for an smtp-sink without 8BITMIME (5.6.3); and a 4xx
# to the first MAIL of a session (smtp-sink -r mail) ends the flush without
# a reconnect.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"
. "$SRCDIR/tests/integration/lib/odmr.sh"
. "$SRCDIR/tests/integration/lib/peer_cases.sh"

D=$(fl_dir)
P=$D/pf
trap 'fl_stop; pf_stop "$P"; sink_stop N8; sink_stop T4; [ -n "${KEEP:-}" ] || rm -rf "$D" "$WORK"' EXIT
PP=$(free_port) OD_PORT=$(free_port) PN=$(free_port) PT=$(free_port)

# --- the customer's Postfix: STARTTLS, virtual maildir delivery ---
pf_new "$P" "$PP"
sed -i "s/^127\.0\.0\.1:$PP /127.0.0.2:$PP /" "$P/conf/master.cf"
mkdir -p "$P/mail" && chown nobody "$P/mail"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=customer.test -days 1 \
  -keyout "$P/key.pem" -out "$P/cert.pem" >/dev/null 2>&1 || { fail "openssl req"; finish; exit 1; }
pf_set "$P" \
  "smtpd_tls_cert_file = $P/cert.pem" "smtpd_tls_key_file = $P/key.pem" \
  "smtpd_tls_security_level = may" "smtpd_tls_loglevel = 1" \
  "virtual_mailbox_domains = virt.dom odmr.dom" "virtual_mailbox_base = $P" \
  "virtual_mailbox_maps = static:mail/" "virtual_uid_maps = static:$(id -u nobody)" \
  "virtual_gid_maps = static:$(id -g nobody)" "message_size_limit = 11000000" \
  "smtpd_recipient_restrictions = check_recipient_access inline:{ {r550@virt.dom = 550 5.1.1 no such user}, {r450@virt.dom = 450 4.2.1 try later} }, permit_mynetworks, reject" \
  "smtp_dns_support_level = disabled" "default_transport = error:no outbound mail in this test"
pf_start "$P" >"$D/pf-start.log" 2>&1 && wait_port 127.0.0.2 "$PP" ||
  { fail "the customer's Postfix starts" "$(cat "$D/pf-start.log")"; finish; exit 1; }
pass "the customer's Postfix with STARTTLS on 127.0.0.2:$PP"

fl_config "$D" "retry_interval = 0s" "odmr {" "enable = true" "listen = { \"inet:127.0.0.1:$OD_PORT\" }" \
  "tls_cert = \"$P/cert.pem\"" "tls_key = \"$P/key.pem\"" "}"
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }

pc_run "$D" "$P" 127.0.0.2 "$PP" yes yes

pf_wait_log "$P" 'TLS connection established from .*\[127\.0\.0\.1\]' 5 &&
  pass "delivered over STARTTLS (Postfix logs the TLS session)" || fail "STARTTLS used" "$(grep -i tls "$P/log/maillog" | tail -3)"
pf_wait_log "$P" 'disconnect from .* bdat=[0-9]+' 5 &&
  pass "CHUNKING used (Postfix counts BDAT commands)" || fail "BDAT used" "$(grep disconnect "$P/log/maillog" | tail -2)"
pf_wait_log "$P" 'sender delivery status notification' 10 &&
  pass "NOTIFY=SUCCESS passed on: Postfix reports the delivery itself" ||
  fail "NOTIFY passed on" "$(grep -i 'notification\|dsn' "$P/log/maillog" | tail -3)"

# --- ODMR through fetchmail into this Postfix (which offers STARTTLS) ---
s1=$(printf secret1 | "$AUTOTURNCTL" secret) && s2=$(printf secret2 | "$AUTOTURNCTL" secret) ||
  fail "autoturnctl secret"
fl_customers "$D" <<SRC || fail "compile ODMR customers"
customer dyn
    domain odmr.dom
    delivery host 127.0.0.9:25
    tls may
    trigger atrn
    secret $s1
customer enc
    domain enc.dom
    delivery host 127.0.0.9:25
    tls encrypt
    trigger atrn
    secret $s2
SRC
for i in 1 2 3; do
  pc_msg "$WORK/o$i" "o$i" "u$i@odmr.dom" "held for ODMR $i"
  fl_put "$D" dyn "$WORK/o$i" "u$i@odmr.dom" || fail "hold o$i"
done
home=$D/fetchmail && mkdir -p "$home" && chmod 0700 "$home"
printf 'poll 127.0.0.1 protocol ODMR service %s user "dyn" password "secret1" fetchdomains odmr.dom smtphost 127.0.0.2/%s\n' \
  "$OD_PORT" "$PP" >"$home/rc" && chmod 0600 "$home/rc"
FM_OUT=$(FETCHMAILHOME=$home timeout 120 fetchmail -v --pidfile "$home/fetchmail.pid" -f "$home/rc" 2>&1)
FM_RC=$?
[ "$FM_RC" = 0 ] && pass "fetchmail ODMR: exit 0" || fail "fetchmail exit 0" "rc $FM_RC" "$(printf '%s\n' "$FM_OUT" | tail -5)"
[ "$(fl_held "$D" dyn)" = 0 ] && pass "ODMR: nothing left held" || fail "ODMR: held" "$(fl_held "$D" dyn)"
! grep -q 'TLS handshake' "$D/flusher.log" && pass "ODMR: no STARTTLS on the turned-around connection" ||
  fail "no TLS through fetchmail" "$(grep 'TLS' "$D/flusher.log" | tail -3)"
for i in 1 2 3; do
  python3 "$SRCDIR/tests/integration/lib/peercheck.py" --has "$P" "u$i@odmr.dom" || break
done && pass "ODMR: the 3 messages are in the customer's Postfix mailbox" ||
  fail "ODMR delivered" "$(grep -E 'odmr|dyn' "$D/flusher.log" | tail -5)"

# --- tls encrypt for ODMR: ATRN only inside TLS on the ODMR port ---
run od_client 127.0.0.1 "$OD_PORT" "EHLO c.test" "CRAM enc secret2" "ATRN"
expect_line "tls encrypt: ATRN without TLS refused" out "> 530 5.7.0 Must issue a STARTTLS command first"
run od_client 127.0.0.1 "$OD_PORT" "EHLO c.test" STARTTLS "EHLO c.test" "CRAM enc secret2" "ATRN"
expect_line "tls encrypt: ATRN after STARTTLS accepted (nothing held)" out "> 453 You have no mail"

# --- our own bounces: 5.3.4 (SIZE) and 5.6.3 (no 8BITMIME); 4xx to the first MAIL ---
sink_start N8 "127.0.0.3:$PN" "$D/sinkN8" -8 || fail "smtp-sink without 8BITMIME"
sink_start T4 "127.0.0.4:$PT" "$D/sinkT4" -r mail -b "452 4.3.1 try again later" || fail "smtp-sink 4xx at MAIL"
fl_customers "$D" <<SRC || fail "compile the last customers"
customer acme
    domain virt.dom
    delivery host 127.0.0.2:$PP
customer no8
    domain e8.dom
    delivery host 127.0.0.3:$PN
customer t4
    domain t4.dom
    delivery host 127.0.0.4:$PT
SRC
rm -f "$D"/dsn/* "$D"/spool/acme/new/*      # the 450 recipient's message: done with
pc_msg "$WORK/huge" huge huge@virt.dom
python3 -c 'import sys; sys.stdout.buffer.write((b"y" * 98 + b"\r\n") * 115000)' >>"$WORK/huge"
fl_put "$D" acme "$WORK/huge" huge@virt.dom || fail "hold 11.5 MB"
run fl_ctl "$D" flush acme --wait
expect "larger than the server's SIZE: bounced, not sent" 0 "delivered 0, deferred 0, bounced 1"
res=$(python3 "$SRCDIR/tests/integration/lib/peercheck.py" --dsn "$D/dsn" failed huge@virt.dom 5.3.4 \
      "X-Autoturn; message too big for the customer's server: " 127.0.0.2)
[ "$res" = ok ] && grep -q "to=<huge@virt.dom>, .*status=bounced (message too big for the customer's server: [0-9]* bytes, its SIZE limit is 11000000; not sent)" \
  "$D/flusher.log" && pass "SIZE: DSN with 5.3.4, the sizes logged" || fail "SIZE DSN" "$res" "$(grep huge@ "$D/flusher.log")"

pc_msg "$WORK/e8" e8 e8@e8.dom "$(printf '8-bit \xe9')"
FL_PUT_SENDER='s@example.org|BODY=8BITMIME' fl_put "$D" no8 "$WORK/e8" e8@e8.dom || fail "hold 8-bit"
run fl_ctl "$D" flush no8 --wait
expect "8-bit for a server without 8BITMIME: bounced, not sent" 0 "delivered 0, deferred 0, bounced 1"
res=$(python3 "$SRCDIR/tests/integration/lib/peercheck.py" --dsn "$D/dsn" failed e8@e8.dom 5.6.3 \
      "X-Autoturn; 8-bit message (BODY=8BITMIME) and the customer's server does not offer 8BITMIME; not converted, not sent" 127.0.0.3)
[ "$res" = ok ] && pass "no 8BITMIME: DSN with 5.6.3" || fail "8BITMIME DSN" "$res"
[ -z "$(ls "$D/sinkN8")" ] && pass "no 8BITMIME: nothing sent" || fail "nothing at the sink" "$(ls "$D/sinkN8")"
for i in 1 2; do pc_msg "$WORK/t4$i" "t4$i" "u@t4.dom" x; fl_put "$D" t4 "$WORK/t4$i" u@t4.dom; done
run fl_ctl "$D" flush t4 --wait
expect "4xx to the first MAIL: the flush ends, all kept" 75 "delivered 0, deferred 2, bounced 0"
[ "$(fl_held "$D" t4)" = 2 ] && ! grep -q 'customer=t4: .*reconnecting' "$D/flusher.log" &&
  pass "4xx to the first MAIL: no reconnect" || fail "no reconnect on the first message" "$(grep customer=t4 "$D/flusher.log")"

fl_stop
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$D/flusher.log" &&
  fail "no sanitizer reports" "$(grep -E -A5 'Sanitizer|runtime error' "$D/flusher.log" | head -20)" ||
  pass "no sanitizer reports in the flusher's log"
finish
