#!/bin/bash
# SPDX-License-Identifier: ISC
# t_tmp_leftovers.sh - no leftovers after a crash: autoturn-milter is
# killed (kill -9) while it writes a held message behind a real Postfix;
# the sender is refused (4xx: nothing was accepted), the partial file
# stays in <spool>/acme/tmp/, a sweep with tmp_max_age 1h keeps it, and a
# sweep with tmp_max_age 2s removes it with its log line (directories and
# symbolic links in tmp/ are left alone).
#
# The moment "mid-write" is caught by a poller that stops the milter
# (SIGSTOP) as soon as a non-empty file shows in tmp/; a message committed
# before the poller saw it is a miss and the attempt is repeated.
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/milter.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"

D=$(mt_dir)
F=$(fl_dir)
trap '[ -n "${MT_PID:-}" ] && kill -9 "$MT_PID" 2>/dev/null; mt_down "$D"; fl_stop; rm -rf "$D" "$F" "$WORK"' EXIT

mt_customers "$D" <<'SRC' || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
customer gamma
    domain gamma.example
SRC
mt_up "$D" "virt.dom" || { fail "milter, postfix and smtp-sink start"; finish; exit 1; }

# a message of about 9 MB (under Postfix's default 10 MB limit): the milter
# takes many body chunks to write it
{
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n'
  head -c 9000000 /dev/zero | tr '\0' 'x' | fold -w 76 | sed 's/$/\r/'
} >"$WORK/big"

# stop_when_writing DIR PID SECONDS - SIGSTOP PID as soon as DIR has a
# non-empty file; prints its name, or nothing when SECONDS pass
stop_when_writing() {
  python3 - "$@" <<'PY'
import os, signal, sys, time
d, pid, end = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        for e in os.scandir(d):
            if e.is_file(follow_symlinks=False) and e.stat().st_size > 0:
                os.kill(pid, signal.SIGSTOP)
                print(e.name)
                sys.exit(0)
    except FileNotFoundError:
        pass
    time.sleep(0.0005)
PY
}

tmpfile=
for attempt in 1 2 3 4 5; do
  mt_smtp "$PORT" s@example.org "$WORK/big" a@virt.dom >"$WORK/smtp.out" 2>&1 &
  client=$!
  name=$(stop_when_writing "$D/spool/acme/tmp" "$MT_PID" 120)
  if [ -n "$name" ] && [ -f "$D/spool/acme/tmp/$name" ] && [ -z "$(mt_spool_files "$D" acme)" ]; then
    kill -9 "$MT_PID"
    wait "$MT_PID" 2>/dev/null
    MT_PID=
    wait "$client"
    tmpfile=$name
    break
  fi
  # missed: the message was committed before the poller saw it; start over
  [ -n "$name" ] && kill -CONT "$MT_PID"
  wait "$client"
  rm -f "$D"/spool/acme/new/*
done
if [ -n "$tmpfile" ]; then
  pass "milter killed while writing a held message (attempt $attempt)"
else
  fail "milter killed mid-write" "never caught in 5 attempts" "$(cat "$WORK/smtp.out")"
  finish; exit 1
fi
grep -q '^DATA 4[0-9][0-9] ' "$WORK/smtp.out" && pass "the sender gets 4xx: nothing was accepted" ||
  fail "sender refused with 4xx" "$(cat "$WORK/smtp.out")"
size=$(stat -c %s "$D/spool/acme/tmp/$tmpfile")
[ -f "$D/spool/acme/tmp/$tmpfile" ] && [ -z "$(mt_spool_files "$D" acme)" ] &&
  pass "the partial file ($size bytes) is left in tmp/, nothing in new/" ||
  fail "partial file in tmp/" "$(ls -l "$D/spool/acme/tmp" "$D/spool/acme/new")"

# the flusher shares the milter's spool; an expired message of gamma makes
# every sweep say "sweep done", so that a sweep that kept the file is seen
fl_customers "$F" <"$D/customers" || { fail "compile customers (flusher)"; finish; exit 1; }
sweep_config() {
  fl_config "$F" "max_age = 2s" "sweep_interval = 1s" "$1"
  sed -i "s|directory = \"$F/spool\"|directory = \"$D/spool\"|" "$F/autoturn.conf"
}
printf 'Subject: old\r\n\r\nold\r\n' >"$WORK/old"

# --- 1. younger than tmp_max_age (1h): kept ---
sweep_config "tmp_max_age = 1h"
"$SPOOL_PUT" "$D/spool" gamma s@example.org g@gamma.example <"$WORK/old" >/dev/null ||
  fail "spool_put"
chown -R nobody "$D/spool"
fl_start "$F" || { fail "flusher starts" "$(cat "$F/flusher.log")"; finish; exit 1; }
wait_log "$F/flusher.log" 'sweep done: customers=2, bounced=1, warned=0, skipped=0, tmp_removed=0$' &&
  [ -f "$D/spool/acme/tmp/$tmpfile" ] &&
  pass "a sweep keeps a tmp/ file younger than tmp_max_age" ||
  fail "young tmp/ file kept" "$(ls -l "$D/spool/acme/tmp")" "$(tail -5 "$F/flusher.log")"
fl_stop

# --- 2. older than tmp_max_age (2s): removed, logged; no dir or link touched ---
mkdir "$D/spool/acme/tmp/somedir"
echo keep >"$WORK/target"
ln -s "$WORK/target" "$D/spool/acme/tmp/somelink"
chown -h nobody "$D/spool/acme/tmp/somedir" "$D/spool/acme/tmp/somelink"
sweep_config "tmp_max_age = 2s"
fl_start "$F" || { fail "flusher restarts" "$(cat "$F/flusher.log")"; finish; exit 1; }
re="customer=acme: removed tmp/$tmpfile \\($size bytes, unchanged for [0-9]+s\\): left by an interrupted write$"
wait_log "$F/flusher.log" "$re" 30 && [ ! -e "$D/spool/acme/tmp/$tmpfile" ] &&
  pass "after tmp_max_age the sweep removes it, with its log line" ||
  fail "stale tmp/ file removed" "$(ls -l "$D/spool/acme/tmp")" "$(grep -E 'tmp|sweep' "$F/flusher.log")"
wait_log "$F/flusher.log" 'sweep done: customers=2, bounced=0, warned=0, skipped=0, tmp_removed=1$' &&
  pass "sweep done counts it (tmp_removed=1)" || fail "sweep done line" "$(grep 'sweep done' "$F/flusher.log")"
[ -d "$D/spool/acme/tmp/somedir" ] && [ -L "$D/spool/acme/tmp/somelink" ] &&
  [ "$(cat "$WORK/target")" = keep ] &&
  pass "a directory and a symbolic link in tmp/ are left alone" ||
  fail "non-regular entries kept" "$(ls -l "$D/spool/acme/tmp")"
fl_stop
grep -Eq 'Sanitizer|runtime error:' "$F/flusher.log" &&
  fail "flusher log has no sanitizer report" "$(grep -A20 -E 'Sanitizer|runtime error:' "$F/flusher.log" | head -30)" ||
  pass "flusher log has no sanitizer report"
finish
