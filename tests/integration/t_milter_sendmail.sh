# SPDX-License-Identifier: ISC
# t_milter_sendmail.sh - autoturn-milter behind a real (private) Sendmail
# 8.17 attached with the shipped conf/sendmail-autoturn.mc: held-only and
# mixed recipients, the queue id from Sendmail's `i` macro, a byte-exact
# 8-bit message, and the F=T answer while the milter is down.
# Sendmail is fetched with apt-get download on the first run (cached in
# /var/cache/autoturn-tests/sendmail, or $AUTOTURN_SM_CACHE).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib/postfix.sh"
. "$(dirname "$0")/lib/milter.sh"
. "$(dirname "$0")/lib/sendmail.sh"

D=$(mt_dir)
trap 'sm_stop "$D/sm"; sink_stop MT; mt_stop; rm -rf "$D" "$WORK"' EXIT

sm_fetch || { fail "sendmail packages fetched and unpacked"; finish; exit 1; }
mt_customers "$D" <<'SRC' || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom .virt.dom
SRC
mt_config "$D"
mt_start "$D" || { fail "milter starts" "$(cat "$D/milter.log")"; finish; exit 1; }
PORT=$(free_port)
SINKPORT=$(free_port)
sink_start MT "127.0.0.1:$SINKPORT" "$D/sink" || { fail "smtp-sink starts"; finish; exit 1; }

# The shipped snippet, with only its socket path changed to this test's.
sed "s|local:/run/autoturn/milter.sock|local:$D/run/milter.sock|" \
  "$SRCDIR/conf/sendmail-autoturn.mc" >"$D/autoturn.mc"
if sm_cf "$D/sm" "$PORT" "$SINKPORT" "$D/autoturn.mc" >"$D/cf.log" 2>&1 &&
   grep -qxF "Xautoturn, S=local:$D/run/milter.sock, F=T, T=C:5s;S:10s;R:10s;E:30s" "$D/sm/sendmail.cf" &&
   grep -qx 'O InputMailFilters=autoturn' "$D/sm/sendmail.cf"; then
  pass "sendmail.cf built with m4 from conf/sendmail-autoturn.mc"
else
  fail "sendmail.cf from the snippet" "$(cat "$D/cf.log")" "$(grep -E '^X|InputMail' "$D/sm/sendmail.cf")"
  finish; exit 1
fi
sm_start "$D/sm" "$PORT" >"$D/sm-start.log" 2>&1 || {
  fail "sendmail starts" "$(cat "$D/sm-start.log")"; finish; exit 1; }
pass "sendmail runs on 127.0.0.1:$PORT"

# msg FILE SUBJECT - a message with Date and Message-ID
msg() {
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n\r\nhello\r\n' \
    "$2" "$2" >"$1"
}
held() { grep -l "^Message-ID: <$1@example.org>" $(mt_spool_files "$D" acme) 2>/dev/null; }
# sm_done QID - wait until Sendmail has finished with a message
sm_done() { sm_wait_log "$D/sm" "$1: (done;|to=<[^>]*>, .*stat=discarded)" 20; }

# --- 1. held only: stored once, nothing at the sink ---
msg "$WORK/m1" held-only
run mt_smtp "$PORT" s@example.org "$WORK/m1" a@virt.dom b@sub.virt.dom
expect "held only: client gets 250" 0 "DATA 250 2.0.0"
qid=$(printf '%s\n' "$OUT" | sm_qid)
sm_done "$qid" || fail "held only: sendmail finished" "$(sm_log "$D/sm" | tail -5)"
f=$(held held-only)
if [ "$(mt_spool_files "$D" acme | wc -l)" = 1 ] && [ "$(grep -c '^X-Autoturn-Rcpt:' "$f")" = 2 ] &&
   grep -qx 'X-Autoturn-Rcpt: <a@virt.dom>' "$f" && grep -qx 'X-Autoturn-Rcpt: <b@sub.virt.dom>' "$f" &&
   grep -qx 'X-Autoturn-Sender: <s@example.org>' "$f"; then
  pass "held only: one copy with the sender and both recipients"
else
  fail "held only: one copy" "files: $f" "$(head -8 $f 2>/dev/null)"
fi
if [ -n "$qid" ] && grep -qx "X-Autoturn-Queue-Id: $qid" "$f"; then
  pass "held only: the copy carries Sendmail's queue id ($qid, macro i)"
else
  fail "held only: queue id" "client saw: $qid" "$(grep Queue-Id "$f")"
fi
# every recipient held: the discard removes them all (no delrcpt round trips)
if sm_log "$D/sm" | grep -q "$qid: Milter: data, discard" &&
   sm_log "$D/sm" | grep -q "$qid: to=<a@virt.dom>, .*stat=discarded" &&
   sm_log "$D/sm" | grep -q "$qid: to=<b@sub.virt.dom>, .*stat=discarded"; then
  pass "held only: sendmail logs the discard of both recipients"
else
  fail "held only: sendmail log" "$(sm_log "$D/sm" | grep "$qid")"
fi
if grep -q ": orig_queue_id=$qid, customer=acme, from=<s@example.org>, nrcpt=2, size=[0-9]*, status=held" "$D/milter.log"; then
  pass "held only: milter log line"
else
  fail "held only: milter log line" "$(tail -3 "$D/milter.log")"
fi
sleep 1
[ "$(mt_sink_count "$D")" = 0 ] && [ "$(sm_queue_count "$D/sm")" = 0 ] &&
  pass "held only: nothing reaches the smtp-sink, nothing left in sendmail's queue" ||
  fail "held only: sink and queue empty" "sink: $(ls "$D/sink")" "queue: $(ls "$D/sm/queue")"

# --- 2. mixed: held ones in the spool, the rest at the sink ---
msg "$WORK/m2" mixed
run mt_smtp "$PORT" s@example.org "$WORK/m2" x@other.test c@virt.dom y@other.test
expect "mixed: client gets 250" 0 "DATA 250 2.0.0"
qid=$(printf '%s\n' "$OUT" | sm_qid)
sm_done "$qid" || fail "mixed: sendmail finished" "$(sm_log "$D/sm" | grep "$qid")"
sinkfile=$(grep -l "Subject: mixed" "$D"/sink/* 2>/dev/null)
if [ "$(printf '%s\n' "$sinkfile" | grep -c .)" = 1 ] && [ "$(grep -c '^X-Rcpt-Args:' "$sinkfile")" = 2 ] &&
   grep -qx 'X-Rcpt-Args: <x@other.test>' "$sinkfile" && grep -qx 'X-Rcpt-Args: <y@other.test>' "$sinkfile"; then
  pass "mixed: the sink got one copy for exactly x@other.test and y@other.test"
else
  fail "mixed: sink recipients" "$(grep -h X-Rcpt-Args "$D"/sink/* 2>/dev/null)"
fi
f=$(held mixed)
if [ -n "$f" ] && [ "$(grep -c '^X-Autoturn-Rcpt:' "$f")" = 1 ] && grep -qx 'X-Autoturn-Rcpt: <c@virt.dom>' "$f" &&
   grep -qx "X-Autoturn-Queue-Id: $qid" "$f"; then
  pass "mixed: the held copy has only c@virt.dom and the queue id"
else
  fail "mixed: held copy" "$(head -8 "$f" 2>/dev/null)"
fi
sm_log "$D/sm" | grep -Eq "$qid: to=(<[xy]@other.test>,?)+, .* mailer=relay, .*stat=Sent" &&
  ! sm_log "$D/sm" | grep -q "$qid: to=<c@virt.dom>" &&
  pass "mixed: sendmail relays the others and never tries to deliver c@virt.dom" ||
  fail "mixed: sendmail deliveries" "$(sm_log "$D/sm" | grep "$qid")"

# --- 3. 8-bit message stored byte-exact ---
# CRLF line ends, a folded header, a blank header value, lines starting
# with '.', bytes 0x80-0xff: the stored message after X-Autoturn-End: must
# be the very bytes sent (Sendmail passes no Received: of its own).
{
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: 8bit\r\n folded\r\n\tagain\r\n'
  printf 'X-Blank:\r\nX-Spaces:    four\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <8bit@example.org>\r\n'
  printf 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
  printf 'caf\xe9 \xff\xfe\x80\r\n.dot line\r\n..two dots\r\n\r\n  trailing blanks  \r\nend\r\n'
} >"$WORK/m3"
MT_MAIL_OPTS="BODY=8BITMIME" run mt_smtp "$PORT" s@example.org "$WORK/m3" a@virt.dom
expect "8bit: client gets 250" 0 "DATA 250 2.0.0"
f=$(grep -l "^Message-ID: <8bit@example.org>" $(mt_spool_files "$D" acme))
if [ -n "$f" ] && cmp "$WORK/m3" <(mt_body "$f") >"$WORK/cmp" 2>&1; then
  pass "8bit: stored message equals the message sent, byte for byte"
else
  fail "8bit: byte-exact" "$(cat "$WORK/cmp")" "$(mt_body "$f" | od -c | head -20)"
fi
grep -qx 'X-Autoturn-Sender: BODY=8BITMIME <s@example.org>' "$f" &&
  pass "8bit: BODY=8BITMIME kept on the sender line" ||
  fail "8bit: BODY=8BITMIME kept" "$(grep Sender "$f")"

# --- 4. milter down: F=T tempfails at MAIL FROM, nothing accepted ---
# Twice: a crashed milter (SIGKILL leaves its socket, nobody listens:
# "Connection refused"), then no socket at all (Sendmail calls the
# missing path "unsafe").
kill -KILL "$MT_PID"; wait "$MT_PID" 2>/dev/null; MT_PID=
before=$(mt_spool_files "$D" acme | wc -l)
msg "$WORK/m4" down
for how in stale missing; do
  if [ "$how" = stale ]; then
    why="error connecting to filter: Connection refused by $D/run/milter.sock"
  else
    rm -f "$D/run/milter.sock"
    why="local socket name $D/run/milter.sock unsafe"
  fi
  tempfailed() { sm_log "$D/sm" | grep -c 'SMTP MAIL command (<s@example.org>) .* tempfailed (due to previous checks)$'; }
  n_before=$(tempfailed)
  run mt_smtp "$PORT" s@example.org "$WORK/m4" a@virt.dom x@other.test
  expect_line "milter down ($how socket): MAIL FROM gets 451 4.3.2" out "MAIL 451 4.3.2 Please try again later"
  # Sendmail's log comes through syslog: wait for this session's line
  logged() { [ "$(tempfailed)" -gt "$n_before" ]; }
  wait_for 30 logged
  qid=$(sm_log "$D/sm" | sed -n 's/.*: \([0-9A-Za-z]*\): SMTP MAIL command (<s@example.org>) .* tempfailed (due to previous checks)$/\1/p' | tail -1)
  if [ -n "$qid" ] && sm_log "$D/sm" | grep -qF "$qid: Milter (autoturn): $why" &&
     sm_log "$D/sm" | grep -q "$qid: Milter (autoturn): to error state" &&
     sm_log "$D/sm" | grep -q "$qid: Milter: initialization failed, temp failing commands"; then
    pass "milter down ($how socket): sendmail logs why and that it tempfails"
  else
    fail "milter down ($how socket): sendmail log" "want: $why" "$(sm_log "$D/sm" | tail -5)"
  fi
done
if ! grep -q '^DATA' "$WORK/out" && [ "$(mt_spool_files "$D" acme | wc -l)" = "$before" ] &&
   [ "$(sm_queue_count "$D/sm")" = 0 ]; then
  pass "milter down: no message accepted, nothing stored"
else
  fail "milter down: nothing accepted" "$OUT"
fi
rm -f "$D/run/milter.sock"

# --- 5. milter back: mail flows again without touching Sendmail ---
mt_start "$D" || fail "milter restarts" "$(tail -3 "$D/milter.log")"
msg "$WORK/m5" back
run mt_smtp "$PORT" s@example.org "$WORK/m5" d@virt.dom
expect "milter back: client gets 250" 0 "DATA 250 2.0.0"
[ -n "$(held back)" ] && pass "milter back: the message is held" || fail "milter back: held" "$(ls "$D/spool/acme/new")"

left=$(find "$D"/spool/*/tmp -type f | wc -l)
[ "$left" = 0 ] && pass "no files left in any tmp/" || fail "tmp/ empty" "$left files"
mt_check_log "$D"
finish
