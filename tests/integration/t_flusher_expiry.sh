#!/bin/bash
# SPDX-License-Identifier: ISC
# t_flusher_expiry.sh - the expiry sweep of autoturn-flusher, with short
# ages (max_age 2s, sweep_interval 1s) and the FAKE local MTA of
# lib/flusher.sh recording the DSNs: mail of a customer that never
# connects is bounced (Action: failed, Status: 4.4.7, every recipient)
# and leaves the spool; NOTIFY=NEVER: removed without a DSN; a customer
# no longer in the table uses the default max_age; the customer's own
# max-age wins; a null sender's DSN goes to the postmaster; a customer
# whose spool lock is held is skipped until the lock goes; a DSN that the
# MTA refuses (exit 75) keeps the message; delay warnings (delay_warning
# 1s, max_age 1h): exactly one per message over several sweeps, only to
# recipients whose NOTIFY asks for DELAY, and markers of gone messages
# are cleaned.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"

D=$(fl_dir)
LOCKPID=
trap '[ -n "$LOCKPID" ] && kill "$LOCKPID" 2>/dev/null; fl_stop; rm -rf "$D" "$WORK"' EXIT
PORT=$(free_port)

fl_customers "$D" <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
    delivery host 127.0.0.3:$PORT
    tls none
customer gamma
    domain gamma.example
    delivery host 127.0.0.3:$PORT
    tls none
customer patient
    domain patient.example
    delivery host 127.0.0.3:$PORT
    tls none
    max-age 1h
SRC

# msg FILE TAG - a message with a unique Message-ID
msg() {
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nbody %s\r\n' \
    "$2" "$2" "$2" >"$1"
}
# put CUSTOMER TAG SENDER RCPT... - hold a message (RCPT may carry "|PARAMS")
put() {
  local cust=$1 tag=$2 sender=$3; shift 3
  msg "$WORK/$tag" "$tag"
  "$SPOOL_PUT" "$D/spool" "$cust" "$sender" "$@" <"$WORK/$tag" >/dev/null || fail "spool_put $tag"
  chown -R nobody "$D/spool"
}
# dsn_for TAG - the recorded DSN files (.msg) that return message TAG
dsn_for() { grep -l "Message-ID: <$1@example.org>" "$D"/dsn/*.msg 2>/dev/null; }
gone() { [ "$(fl_held "$D" "$1")" = 0 ]; }
has_dsn() { [ -n "$(dsn_for "$1")" ]; }

# --- 1. expiry: max_age 2s, sweep every second ---
fl_config "$D" "max_age = 2s" "sweep_interval = 1s" "postmaster = pm@example.net"
put acme e1 s@example.org a@virt.dom b@virt.dom
put acme e2 s@example.org "c@virt.dom|NOTIFY=NEVER" "d@virt.dom|NOTIFY=SUCCESS"
put acme e3 "" a@virt.dom
put ghost e4 s@example.org x@ghost.example
put patient e5 s@example.org p@patient.example
put gamma e6 s@example.org g@gamma.example
touch "$D/spool/gamma/.lock" && chown nobody "$D/spool/gamma/.lock"
# flock(1) holds the lock while its command (a sleep that leaves its pid) runs
flock "$D/spool/gamma/.lock" bash -c "echo \$\$ >'$D/lock.pid'; exec sleep 60" &
FLOCKPID=$!
wait_for 20 test -s "$D/lock.pid" || fail "flock holds the lock"
LOCKPID=$(cat "$D/lock.pid")
fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; finish; exit 1; }

if wait_for 30 gone acme && wait_for 30 gone ghost; then
  pass "expired mail of a customer that never connects leaves the spool"
else
  fail "expired mail leaves the spool" "acme: $(fl_held "$D" acme), ghost: $(fl_held "$D" ghost)" \
    "$(tail -20 "$D/flusher.log")"
fi
f=$(dsn_for e1)
if [ "$(echo "$f" | grep -c .)" = 1 ] && grep -qx 's@example.org' "${f%.msg}.args" &&
   grep -q '^Action: failed' "$f" && grep -q '^Status: 4.4.7' "$f" &&
   grep -q '^Final-Recipient: rfc822; a@virt.dom' "$f" && grep -q '^Final-Recipient: rfc822; b@virt.dom' "$f" &&
   grep -q '^Diagnostic-Code: X-Autoturn; held for 2s; the customer did not collect it' "$f"; then
  pass "one failed DSN (4.4.7) for both recipients, to the sender"
else
  fail "expiry DSN" "$f" "$(cat "${f%.msg}.args" 2>/dev/null)" "$(grep -E '^(Action|Status|Final-Recipient|Diagnostic-Code):' "$f" 2>/dev/null)"
fi
[ -z "$(dsn_for e2)" ] && pass "NOTIFY=NEVER / NOTIFY=SUCCESS: removed without a DSN" ||
  fail "NOTIFY=NEVER: no DSN" "$(dsn_for e2)"
f=$(dsn_for e3)
if [ -n "$f" ] && grep -qx 'pm@example.net' "${f%.msg}.args" && ! grep -qx 's@example.org' "${f%.msg}.args"; then
  pass "null sender: the DSN goes to the postmaster"
else
  fail "null sender: DSN to the postmaster" "$f" "$(cat "${f%.msg}.args" 2>/dev/null)"
fi
[ -n "$(dsn_for e4)" ] && pass "a customer no longer in the table: default max_age" ||
  fail "customer not in the table" "$(tail -5 "$D/flusher.log")"
grep -q ": to=<a@virt.dom>\(, orig_queue_id=[^,]*\)\?, customer=acme, relay=none, delay=[0-9]*, dsn=4\.4\.7, status=bounced (held too long: 2s)$" "$D/flusher.log" &&
  pass "log line per bounced recipient" || fail "log line" "$(grep status= "$D/flusher.log")"
grep -q ": to=<c@virt.dom>\(, orig_queue_id=[^,]*\)\?, customer=acme, relay=none, delay=[0-9]*, dsn=4\.4\.7, status=bounced (held too long: 2s; no DSN: NOTIFY=NEVER)$" "$D/flusher.log" &&
  pass "log line says no DSN for NOTIFY=NEVER" || fail "log line NOTIFY=NEVER" "$(grep status= "$D/flusher.log")"
[ "$(fl_held "$D" patient)" = 1 ] && pass "the customer's own max-age (1h) wins over the default" ||
  fail "customer max-age" "$(fl_held "$D" patient)"

# gamma: its lock is held (as by a running flush): skipped, kept. (gamma's
# message may come due a moment after ghost's: wait for the line.)
wait_log "$D/flusher.log" "customer=gamma: sweep skipped: a flush holds the spool lock" &&
  [ "$(fl_held "$D" gamma)" = 1 ] && [ -z "$(dsn_for e6)" ] &&
  pass "a locked spool is skipped (message kept, no DSN)" ||
  fail "locked spool skipped" "held: $(fl_held "$D" gamma)" "$(grep gamma "$D/flusher.log")"
kill "$LOCKPID"; wait "$FLOCKPID" 2>/dev/null; LOCKPID=
wait_for 30 gone gamma && [ -n "$(dsn_for e6)" ] && pass "once the lock is gone, the next sweep bounces it" ||
  fail "gamma after the lock" "held: $(fl_held "$D" gamma)"
n=$(ls "$D"/dsn/*.msg | wc -l)
sleep 2.5
[ "$(ls "$D"/dsn/*.msg | wc -l)" = "$n" ] && pass "later sweeps send nothing more" ||
  fail "later sweeps" "$(ls "$D"/dsn)"
fl_stop

# --- 2. a DSN that the local MTA refuses keeps the message ---
rm -f "$D"/dsn/*
fl_config "$D" "max_age = 2s" "sweep_interval = 1s"
cat >"$D/failing-sendmail" <<'SH'
#!/bin/sh
# FAKE local MTA that refuses everything (temporary failure)
cat >/dev/null
exit 75
SH
chmod 0755 "$D/failing-sendmail"
sed -i "s|sendmail_command = .*|sendmail_command = \"$D/failing-sendmail\"|" "$D/autoturn.conf"
put acme f1 s@example.org a@virt.dom
fl_start "$D" || { fail "flusher starts (2)" "$(cat "$D/flusher.log")"; finish; exit 1; }
if wait_for 30 grep -q "customer=acme, id=[^ ]*: expiry DSN not sent: sendmail exited with status 75; message kept" "$D/flusher.log"; then
  sleep 1.5
  [ "$(fl_held "$D" acme)" = 1 ] && pass "DSN refused (exit 75): message kept, logged" ||
    fail "DSN refused: kept" "$(fl_held "$D" acme)"
else
  fail "DSN refused: logged" "$(tail -5 "$D/flusher.log")"
fi
fl_stop
rm -rf "$D/spool/acme/new"/* "$D/spool/acme/cur"/*

# --- 3. delay warnings: delay_warning 1s, max_age 1h ---
rm -f "$D"/dsn/*
fl_config "$D" "max_age = 1h" "delay_warning = 1s" "sweep_interval = 1s"
put acme w1 s@example.org a@virt.dom "b@virt.dom|NOTIFY=FAILURE"
put acme w2 s@example.org "c@virt.dom|NOTIFY=DELAY,FAILURE"
put acme w3 s@example.org "d@virt.dom|NOTIFY=NEVER"
mkdir -p "$D/spool/acme/warned" && touch "$D/spool/acme/warned/1.M1P1Q1.gone" && chown -R nobody "$D/spool/acme/warned"
fl_start "$D" || { fail "flusher starts (3)" "$(cat "$D/flusher.log")"; finish; exit 1; }
wait_for 30 has_dsn w2 || fail "a delay warning arrives" "$(tail -5 "$D/flusher.log")"
sleep 4                                   # several more sweeps
c1=$(dsn_for w1 | wc -l) c2=$(dsn_for w2 | wc -l) c3=$(dsn_for w3 | wc -l)
[ "$c1" = 1 ] && [ "$c2" = 1 ] && [ "$c3" = 0 ] &&
  pass "exactly one delay warning per message over several sweeps (none for NOTIFY=NEVER)" ||
  fail "one warning per message" "w1=$c1 w2=$c2 w3=$c3"
f=$(dsn_for w1)
if [ -n "$f" ] && grep -q '^Action: delayed' "$f" && grep -q '^Status: 4.4.7' "$f" &&
   grep -q '^Final-Recipient: rfc822; a@virt.dom' "$f" && ! grep -q 'b@virt.dom' "$f"; then
  pass "delayed DSN (4.4.7) only for recipients that want DELAY"
else
  fail "delayed DSN" "$(grep -E '^(Action|Status|Final-Recipient):' "$f" 2>/dev/null)"
fi
[ "$(fl_held "$D" acme)" = 3 ] && pass "warned messages stay held" || fail "warned messages held" "$(fl_held "$D" acme)"
markers() { [ "$(ls "$D/spool/acme/warned" | wc -l)" = 3 ]; }
wait_for 30 markers && [ ! -e "$D/spool/acme/warned/1.M1P1Q1.gone" ] &&
  pass "one marker per warned message; a stale marker is cleaned" ||
  fail "markers" "$(ls "$D/spool/acme/warned")"
grep -q ": to=<a@virt.dom>\(, orig_queue_id=[^,]*\)\?, customer=acme, relay=none, delay=[0-9]*, dsn=4\.4\.7, status=delayed (held for more than 1s; delay warning sent)$" "$D/flusher.log" &&
  pass "log line per warned recipient" || fail "log line delayed" "$(grep status= "$D/flusher.log" | tail -3)"
fl_stop

# --- 4. after a restart the markers still hold: no second warning ---
fl_start "$D" || { fail "flusher starts (4)" "$(cat "$D/flusher.log")"; finish; exit 1; }
sleep 2.5
[ "$(dsn_for w1 | wc -l)" = 1 ] && [ "$(dsn_for w2 | wc -l)" = 1 ] &&
  pass "no second warning after a restart" || fail "warning after restart" "$(ls "$D/dsn")"
fl_stop

finish
