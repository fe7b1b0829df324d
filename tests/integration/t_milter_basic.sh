# SPDX-License-Identifier: ISC
# t_milter_basic.sh - autoturn-milter behind a real (private) Postfix:
# held-only, mixed and two-customer messages, byte-exact 8-bit and
# SMTPUTF8 storage, ESMTP parameters kept, quota 452, the AutoTURN connect
# notice, and defined answers to malformed or excessive recipients.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib/postfix.sh"
. "$(dirname "$0")/lib/milter.sh"

D=$(mt_dir)
trap 'kill ${FAKE_PID:-} 2>/dev/null; mt_down "$D"; rm -rf "$D" "$WORK"' EXIT

mt_customers "$D" <<'SRC' || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom .virt.dom
    address 127.0.0.2
    trigger connect etrn
customer beta
    domain beta.example
customer full
    domain full.example
    max-messages 1
SRC
mt_up "$D" "virt.dom .virt.dom beta.example full.example" "max_recipients = 50" || {
  fail "milter, postfix and smtp-sink start"; finish; exit 1; }
mt_fake_flusher "$D/run/flusher.sock" "$D/flush-requests" || fail "fake flusher starts"
pf_set "$D/pf" "smtpd_recipient_limit = 20000" "smtpd_soft_error_limit = 100000" \
  "smtpd_hard_error_limit = 100000" "smtpd_error_sleep_time = 0"
postfix -c "$D/pf/conf" reload >/dev/null 2>&1

# msg FILE SUBJECT - a small message with Date and Message-ID (so that
# Postfix adds no header and the stored copy must equal FILE exactly)
msg() {
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n\r\nhello\r\n' \
    "$2" "$2" >"$1"
}

# count_new CUSTOMER - stored messages
count_new() { mt_spool_files "$D" "$1" | wc -l; }

# --- 1. held only: stored once, nothing at the sink ---
msg "$WORK/m1" held-only
run mt_smtp "$PORT" s@example.org "$WORK/m1" a@virt.dom b@sub.virt.dom
expect "held only: client gets 250" 0 "DATA 250"
qid=$(printf '%s\n' "$OUT" | mt_qid)
mt_wait_qid "$D" "$qid" || fail "held only: postfix finished" "$(pf_log "$D/pf" | tail -5)"
files=$(mt_spool_files "$D" acme)
if [ "$(count_new acme)" = 1 ] && [ "$(grep -c '^X-Autoturn-Rcpt:' $files)" = 2 ] &&
   grep -qx 'X-Autoturn-Rcpt: <a@virt.dom>' $files && grep -qx 'X-Autoturn-Rcpt: <b@sub.virt.dom>' $files &&
   grep -qx "X-Autoturn-Queue-Id: $qid" $files; then
  pass "held only: one copy with both recipients and the queue id"
else
  fail "held only: one copy with both recipients" "files: $files" "$(cat $files 2>/dev/null | head -8)"
fi
if pf_log "$D/pf" | grep -q "$qid: milter-discard: END-OF-MESSAGE .*milter triggers DISCARD action"; then
  pass "held only: postfix discards after the milter stored it"
else
  fail "held only: postfix discards" "$(pf_log "$D/pf" | grep "$qid")"
fi
[ "$(mt_sink_count "$D")" = 0 ] && pass "held only: nothing reaches the smtp-sink" ||
  fail "held only: nothing reaches the smtp-sink" "$(ls "$D/sink")"
if grep -q ": orig_queue_id=$qid, customer=acme, from=<s@example.org>, nrcpt=2, size=[0-9]*, status=held" "$D/milter.log"; then
  pass "held only: log line"
else
  fail "held only: log line" "$(tail -3 "$D/milter.log")"
fi

# --- 2. mixed: held ones in the spool, the rest at the sink ---
msg "$WORK/m2" mixed
run mt_smtp "$PORT" s@example.org "$WORK/m2" x@other.test c@virt.dom y@other.test
expect "mixed: client gets 250" 0 "DATA 250"
qid=$(printf '%s\n' "$OUT" | mt_qid)
mt_wait_qid "$D" "$qid"
sinkfile=$(grep -l "Subject: mixed" "$D"/sink/* 2>/dev/null)
if [ -n "$sinkfile" ] && [ "$(grep -c '^X-Rcpt-Args:' "$sinkfile")" = 2 ] &&
   grep -q '^X-Rcpt-Args: <x@other.test>' "$sinkfile" && grep -q '^X-Rcpt-Args: <y@other.test>' "$sinkfile"; then
  pass "mixed: the sink got exactly x@other.test and y@other.test"
else
  fail "mixed: sink recipients" "$(grep -h X-Rcpt-Args "$D"/sink/* 2>/dev/null)"
fi
f=$(grep -l "Subject: mixed" $(mt_spool_files "$D" acme))
if [ -n "$f" ] && [ "$(grep -c '^X-Autoturn-Rcpt:' "$f")" = 1 ] && grep -qx 'X-Autoturn-Rcpt: <c@virt.dom>' "$f"; then
  pass "mixed: the held copy has only c@virt.dom"
else
  fail "mixed: held copy" "$(head -8 "$f" 2>/dev/null)"
fi

# --- 3. two customers in one message: one copy each, own recipients ---
msg "$WORK/m3" two-customers
run mt_smtp "$PORT" s@example.org "$WORK/m3" a@virt.dom u@beta.example v@beta.example
expect "two customers: client gets 250" 0 "DATA 250"
fa=$(grep -l "Subject: two-customers" $(mt_spool_files "$D" acme))
fb=$(grep -l "Subject: two-customers" $(mt_spool_files "$D" beta))
if [ -n "$fa" ] && [ -n "$fb" ] && [ "$(grep -c '^X-Autoturn-Rcpt:' "$fa")" = 1 ] &&
   [ "$(grep -c '^X-Autoturn-Rcpt:' "$fb")" = 2 ] && ! grep -q beta.example "$fa" &&
   grep -qx 'X-Autoturn-Customer: beta' "$fb" && cmp -s <(mt_body "$fa") <(mt_body "$fb"); then
  pass "two customers: a copy per customer with its own recipients, same message"
else
  fail "two customers" "acme: $fa" "beta: $fb"
fi

# --- 4. 8-bit message stored byte-exact, BODY= kept ---
# The file sent has CRLF line ends, Date and Message-ID (so Postfix adds no
# header, and Postfix does not pass its own Received: to milters), a
# folded header, a line starting with '.', bytes 0x80-0xff and a blank
# header value: the stored message after X-Autoturn-End: must be the very
# same bytes.
{
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: 8bit\r\n folded\r\n\tagain\r\n'
  printf 'X-Blank:\r\nX-Spaces:    four\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <8bit@example.org>\r\n'
  printf 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
  printf 'caf\xe9 \xff\xfe\x80\r\n.dot line\r\n..two dots\r\n\r\n  trailing blanks  \r\nend\r\n'
} >"$WORK/m4"
MT_MAIL_OPTS="BODY=8BITMIME" run mt_smtp "$PORT" s@example.org "$WORK/m4" a@virt.dom
expect "8bit: client gets 250" 0 "DATA 250"
f=$(grep -l "^Message-ID: <8bit@example.org>" $(mt_spool_files "$D" acme))
if [ -n "$f" ] && cmp "$WORK/m4" <(mt_body "$f") >"$WORK/cmp" 2>&1; then
  pass "8bit: stored message equals the message sent, byte for byte"
else
  fail "8bit: byte-exact" "$(cat "$WORK/cmp")" "$(mt_body "$f" | od -c | head -20)"
fi
grep -qx 'X-Autoturn-Sender: BODY=8BITMIME <s@example.org>' "$f" &&
  pass "8bit: BODY=8BITMIME kept on the sender line" ||
  fail "8bit: BODY=8BITMIME kept" "$(grep Sender "$f")"

# --- 5. SMTPUTF8: UTF-8 addresses and headers stored byte-exact ---
{
  printf 'From: <s\xc3\xa9@exampl\xc3\xa9.org>\r\nTo: <\xc3\xbc@virt.dom>\r\nSubject: \xe2\x9c\x89 utf8\r\n'
  printf 'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <utf8@example.org>\r\n\r\n\xe6\x97\xa5\xe6\x9c\xac\r\n'
} >"$WORK/m5"
MT_UTF8=1 MT_MAIL_OPTS="SMTPUTF8 BODY=8BITMIME" run mt_smtp "$PORT" "$(printf 's\xc3\xa9@exampl\xc3\xa9.org')" \
  "$WORK/m5" "$(printf '\xc3\xbc@virt.dom')"
expect "smtputf8: client gets 250" 0 "DATA 250"
f=$(grep -l "^Message-ID: <utf8@example.org>" $(mt_spool_files "$D" acme))
if [ -n "$f" ] && cmp -s "$WORK/m5" <(mt_body "$f") &&
   grep -qx "$(printf 'X-Autoturn-Rcpt: <\xc3\xbc@virt.dom>')" "$f" &&
   grep -qx "$(printf 'X-Autoturn-Sender: SMTPUTF8 BODY=8BITMIME <s\xc3\xa9@exampl\xc3\xa9.org>')" "$f"; then
  pass "smtputf8: byte-exact message, UTF-8 sender and recipient, SMTPUTF8 kept"
else
  fail "smtputf8" "$(head -7 "$f" 2>/dev/null)" "$(cat "$D/milter.log" | tail -3)"
fi

# --- 6. DSN parameters survive ---
msg "$WORK/m6" dsn
MT_MAIL_OPTS="RET=HDRS ENVID=abc+2Bdef SIZE=300" MT_RCPT_OPTS="NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;q+2Bp@virt.dom" \
  run mt_smtp "$PORT" s@example.org "$WORK/m6" q+p@virt.dom
expect "dsn: client gets 250" 0 "DATA 250"
f=$(grep -l "Subject: dsn" $(mt_spool_files "$D" acme))
if grep -qx 'X-Autoturn-Sender: RET=HDRS ENVID=abc+2Bdef <s@example.org>' "$f" &&
   grep -qx 'X-Autoturn-Rcpt: NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;q+2Bp@virt.dom <q+p@virt.dom>' "$f"; then
  pass "dsn: RET, ENVID, NOTIFY, ORCPT kept (SIZE dropped)"
else
  fail "dsn parameters" "$(head -6 "$f" 2>/dev/null)"
fi

# --- 7. over quota: 452 for that recipient only ---
msg "$WORK/m7" quota-first
run mt_smtp "$PORT" s@example.org "$WORK/m7" f@full.example
expect "quota: first message fits" 0 "DATA 250"
msg "$WORK/m7b" quota-second
run mt_smtp "$PORT" s@example.org "$WORK/m7b" f@full.example z@other.test a@virt.dom
expect_line "quota: over-quota recipient gets 452 4.2.2" out \
  "RCPT <f@full.example> 452 4.2.2 Mailbox full: too much mail held for this domain"
expect_line "quota: a normal recipient of the same message is accepted" out "RCPT <z@other.test> 250 2.1.5 Ok"
expect_line "quota: a held recipient of another customer is accepted" out "RCPT <a@virt.dom> 250 2.1.5 Ok"
expect "quota: the message is accepted for the others" 0 "DATA 250"
[ "$(count_new full)" = 1 ] && pass "quota: nothing more stored for the full customer" ||
  fail "quota: full customer" "$(count_new full) files"

# --- 8. AutoTURN connect notice: exactly one per connect from a customer ---
: >"$D/flush-requests"
msg "$WORK/m8" notice
MT_SRC=127.0.0.2 run mt_smtp "$PORT" s@example.org "$WORK/m8" z@other.test
expect "notice: session from 127.0.0.2 works" 0 "DATA 250"
MT_SRC=127.0.0.3 run mt_smtp "$PORT" s@example.org "$WORK/m8" z@other.test
expect "notice: session from 127.0.0.3 works" 0 "DATA 250"
# the notice is sent without waiting; the fake records it once the milter hangs up
wait_for 30 grep -qx 'FLUSH customer=acme to=127.0.0.2 reason=connect source=milter' "$D/flush-requests"
if [ "$(wc -l <"$D/flush-requests")" = 1 ] &&
   grep -qx 'FLUSH customer=acme to=127.0.0.2 reason=connect source=milter' "$D/flush-requests"; then
  pass "notice: exactly one FLUSH for the customer's address, none for another"
else
  fail "notice: one FLUSH" "$(cat "$D/flush-requests")"
fi
kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; FAKE_PID=
rm -f "$D/run/flusher.sock"
MT_SRC=127.0.0.2 run mt_smtp "$PORT" s@example.org "$WORK/m8" z@other.test
expect "notice: flusher down: the session goes on" 0 "DATA 250"
wait_log "$D/milter.log" 'customer=acme, client=127.0.0.2: flush notice not sent' &&
  pass "notice: flusher down is logged" || fail "notice: flusher down logged" "$(tail -3 "$D/milter.log")"

# --- 9. malformed recipients get defined answers ---
long=$(head -c 1100 /dev/zero | tr '\0' 'l')
msg "$WORK/m9" malformed
run mt_smtp "$PORT" s@example.org "$WORK/m9" "$long@virt.dom" nodomain '"john doe"@virt.dom' "$long@other.test"
expect_line "malformed: a held address longer than 1000 bytes gets 553 5.1.3" out \
  "RCPT <$long@virt.dom> 553 5.1.3 Recipient cannot be held: address too long"
expect_line "malformed: a recipient without domain is not held (250)" out "RCPT <nodomain> 250 2.1.5 Ok"
expect_line "malformed: quoted local part accepted" out 'RCPT <"john doe"@virt.dom> 250 2.1.5 Ok'
expect_line "malformed: a long address in another domain is left to Postfix" out \
  "RCPT <$long@other.test> 250 2.1.5 Ok"
f=$(grep -l "Subject: malformed" $(mt_spool_files "$D" acme))
grep -qx 'X-Autoturn-Rcpt: <"john doe"@virt.dom>' "$f" && [ "$(grep -c '^X-Autoturn-Rcpt:' "$f")" = 1 ] &&
  pass "malformed: the quoted recipient is held as written" || fail "malformed: quoted held" "$(head -7 "$f")"

# --- 10. 10,000 recipients: max_recipients (50) held, the rest 452 4.5.3 ---
for i in $(seq 1 5000); do echo "h$i@virt.dom"; echo "n$i@other.test"; done >"$WORK/rcpts"
msg "$WORK/m10" many
MT_RCPT_FILE="$WORK/rcpts" run mt_smtp "$PORT" s@example.org "$WORK/m10"
held_ok=$(grep -c '^RCPT <h[0-9]*@virt.dom> 250 ' "$WORK/out")
held_452=$(grep -c '^RCPT <h[0-9]*@virt.dom> 452 4.5.3 Too many held recipients in this message$' "$WORK/out")
other_ok=$(grep -c '^RCPT <n[0-9]*@other.test> 250 ' "$WORK/out")
if [ "$held_ok" = 50 ] && [ "$held_452" = 4950 ] && [ "$other_ok" = 5000 ] && grep -q '^DATA 250' "$WORK/out"; then
  pass "10000 recipients: 50 held, 4950 get 452 4.5.3, 5000 others accepted"
else
  fail "10000 recipients" "held 250: $held_ok, held 452: $held_452, other 250: $other_ok" "$(tail -2 "$WORK/out")"
fi
f=$(grep -l "Subject: many" $(mt_spool_files "$D" acme))
[ "$(grep -c '^X-Autoturn-Rcpt:' "$f")" = 50 ] && pass "10000 recipients: one copy with 50 recipients" ||
  fail "10000 recipients: copy" "$(grep -c '^X-Autoturn-Rcpt:' "$f")"

# --- no temp files left anywhere ---
left=$(find "$D"/spool/*/tmp -type f | wc -l)
[ "$left" = 0 ] && pass "no files left in any tmp/" || fail "tmp/ empty" "$left files" "$(find "$D"/spool/*/tmp -type f | head -3)"
kill -0 "$MT_PID" && pass "milter still running" || fail "milter still running" "$(tail "$D/milter.log")"
mt_check_log "$D"
finish
