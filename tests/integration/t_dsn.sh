#!/bin/bash
# SPDX-License-Identifier: ISC
# t_dsn.sh - delivery status notifications injected into a real private
# Postfix, which relays them to an smtp-sink: by the sendmail method
# (Postfix's own sendmail, pointed at the instance with -C) and by SMTP to
# its port; the sink must get them from <> for the right recipient (the
# sender, or postmaster for a bounce of a bounce). Then the failures, with
# their exact texts: a sendmail command that fails, a relay that refuses
# the recipient, a closed relay port. Driver: flusher/dsn_probe.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
PROBE=${DSN_PROBE:-$BUILDDIR/flusher/dsn_probe}
chmod 755 "$WORK"   # smtp-sink runs as nobody
PF=$WORK/pf SINK=$WORK/sink
P=$(free_port) S=$(free_port) CLOSED=$(free_port)
trap 'pf_stop "$PF"; sink_stop A; rm -rf "$WORK"' EXIT
[ -x "$PROBE" ] || { fail "dsn_probe built" "missing: $PROBE"; finish; exit; }
# temp files of other programs on this machine are not ours to judge
ls /tmp | grep '^autoturn-dsn\.' >"$WORK/tmp-before"

pf_new "$PF" "$P"
pf_set "$PF" "transport_maps = inline:{ sink.test=smtp:[127.0.0.1]:$S }" \
  "smtpd_recipient_restrictions = check_recipient_access inline:{ reject.test=REJECT }, permit_mynetworks, reject"
sink_start A "127.0.0.1:$S" "$SINK" || { fail "smtp-sink start" "$(cat "$SINK.log")"; finish; exit; }
pf_start "$PF" && wait_port 127.0.0.1 "$P" || { fail "postfix start" "$(pf_log "$PF")"; finish; exit; }

# sink_file RCPT: the stored message for RCPT (waits up to 20 s)
sink_file() {
  local i f
  for i in $(seq 1 200); do
    f=$(grep -lxF "X-Rcpt-Args: <$1> ORCPT=rfc822;$1" "$SINK"/* 2>/dev/null | head -1)
    [ -n "$f" ] && { echo "$f"; return 0; }
    sleep 0.1
  done
  return 1
}

# check_dsn LABEL RCPT: the sink got one DSN from <> for RCPT, well formed
check_dsn() {
  local label=$1 rcpt=$2 f
  if ! f=$(sink_file "$rcpt"); then
    fail "$label: delivered to the sink" "$(pf_log "$PF" | tail -5)"
    return
  fi
  grep -qxF 'X-Mail-Args: <>' "$f" || grep -qxF 'X-Mail-Args: <> BODY=8BITMIME' "$f" &&
    pass "$label: envelope sender <>" || fail "$label: envelope sender <>" "$(head -5 "$f")"
  local want
  for want in 'From: Mail Delivery System <MAILER-DAEMON@flusher.autoturn.test>' \
    "To: $rcpt" 'Subject: Undelivered Mail Returned to Sender' 'Auto-Submitted: auto-replied' \
    'Content-Type: message/delivery-status' 'Original-Envelope-Id: probe+1' \
    'Final-Recipient: rfc822; bob@acme.test' 'Action: failed' 'Status: 5.1.1' \
    'Diagnostic-Code: smtp; 550 5.1.1 <bob@acme.test>: no such user' \
    'Content-Type: text/rfc822-headers' 'Message-ID: <probe@sink.test>'; do
    tr -d '\r' <"$f" | grep -qxF -- "$want" || { fail "$label: DSN has '$want'" "$(cat "$f")"; return; }
  done
  tr -d '\r' <"$f" | grep -qxF 'hello' && { fail "$label: original body left out" "$(cat "$f")"; return; }
  pass "$label: DSN fields, original headers, no body"
}

# --- sendmail method: Postfix's sendmail with -C, to the sender ---
run "$PROBE" -m sendmail -c "/usr/sbin/sendmail -C $PF/conf"
expect "sendmail method: accepted" 0 "ok"
check_dsn "sendmail method" alice@sink.test
pf_wait_log "$PF" "from=<>, size=[0-9]+, nrcpt=1" 30 && pass "sendmail method: maillog shows from=<>" ||
  fail "sendmail method: maillog from=<>" "$(pf_log "$PF" | tail -5)"

# --- smtp method, bounce of a bounce: to postmaster ---
run "$PROBE" -m smtp -r "inet:127.0.0.1:$P" -s '' -p postmaster@sink.test
expect "smtp method, null sender: accepted" 0 "ok"
check_dsn "smtp method, null sender" postmaster@sink.test
pf_wait_log "$PF" "to=<postmaster@sink.test>, relay=127.0.0.1.*status=sent" 30 &&
  pass "smtp method: Postfix relayed it to postmaster" || fail "smtp method: relayed" "$(pf_log "$PF" | tail -5)"

# --- failures, with exact texts ---
run "$PROBE" -m sendmail -c /bin/false
expect_line "sendmail method: failing command" out "sendmail exited with status 1"
[ "$RC" = 1 ] && pass "failing command: exit 1" || fail "failing command: exit 1" "rc $RC"
run "$PROBE" -m sendmail -c "/usr/sbin/sendmail -C $WORK/nonexistent"
expect_line "sendmail method: Postfix sendmail with a bad config dir" out "sendmail exited with status 75"
run "$PROBE" -m sendmail -c /nonexistent/sendmail
expect_line "sendmail method: missing program" out \
  "cannot execute /nonexistent/sendmail: No such file or directory"
run "$PROBE" -m smtp -r "inet:127.0.0.1:$P" -s '' -p postmaster@reject.test
expect_line "smtp method: Postfix refuses the recipient" out \
  "bounce relay inet:127.0.0.1:$P: RCPT TO: 554 5.7.1 <postmaster@reject.test>: Recipient address rejected: Access denied"
run "$PROBE" -m smtp -r "inet:127.0.0.1:$CLOSED"
expect_line "smtp method: closed port" out "bounce relay inet:127.0.0.1:$CLOSED: connect: Connection refused"
[ "$RC" = 1 ] && pass "closed port: exit 1" || fail "closed port: exit 1" "rc $RC"
new_tmp() { ls /tmp | grep '^autoturn-dsn\.' | grep -vxF -f "$WORK/tmp-before"; }
no_new_tmp() { [ -z "$(new_tmp)" ]; }
wait_for 10 no_new_tmp && pass "no temp file left in /tmp" || fail "temp files left" "$(new_tmp)"
finish
