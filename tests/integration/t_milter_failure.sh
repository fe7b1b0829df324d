# SPDX-License-Identifier: ISC
# t_milter_failure.sh - failure never loses mail: a spool on a tiny
# filesystem that fills up (4xx, nothing half-written, nothing delivered),
# a missing customer table (451 4.3.0 at RCPT, never "not held"), the
# milter stopped (milter_default_action = tempfail: 451 4.7.1), and the
# start-up refusals (root, bad configuration, usage).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib/postfix.sh"
. "$(dirname "$0")/lib/milter.sh"

D=$(mt_dir)
trap 'mt_down "$D"; umount "$D/spool" 2>/dev/null; rm -rf "$D" "$WORK"' EXIT

mt_customers "$D" <<'SRC' || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
SRC
mkdir -p "$D/spool"
mount -t tmpfs -o size=1m,mode=0755 tmpfs "$D/spool" || { fail "mount tmpfs"; finish; exit 1; }
mt_up "$D" "virt.dom" || { fail "milter, postfix and smtp-sink start"; finish; exit 1; }
chown nobody "$D/spool"

# --- 1. spool fills up: 4xx, nothing half-written, nothing delivered ---
{
  printf 'From: <s@example.org>\r\nSubject: big\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <full@example.org>\r\n\r\n'
  head -c 2000000 /dev/zero | tr '\0' 'x' | fold -w 76 | sed 's/$/\r/'
} >"$WORK/big"
run mt_smtp "$PORT" s@example.org "$WORK/big" a@virt.dom x@other.test
expect "full spool: the client gets 451 4.3.0 at end of data" 0 \
  "DATA 451 4.3.0 Temporary failure storing held mail, try again later"
tmp_empty() { [ "$(find "$D/spool/acme/tmp" -type f | wc -l)" = 0 ]; }
wait_for 30 tmp_empty
n_tmp=$(find "$D/spool/acme/tmp" -type f | wc -l)
n_new=$(find "$D/spool/acme/new" -type f | wc -l)
[ "$n_tmp" = 0 ] && [ "$n_new" = 0 ] && pass "full spool: no file in tmp/ or new/" ||
  fail "full spool: nothing half-written" "tmp: $n_tmp new: $n_new"
[ "$(pf_queue_count "$D/pf")" = 0 ] && [ "$(mt_sink_count "$D")" = 0 ] &&
  pass "full spool: Postfix kept nothing and delivered nothing (the sender keeps it)" ||
  fail "full spool: postfix" "queue $(pf_queue_count "$D/pf"), sink $(mt_sink_count "$D")"
wait_log "$D/milter.log" 'cannot store held mail: customer=acme: write .*No space left on device' &&
  pass "full spool: logged with customer and reason" || fail "full spool: log" "$(tail -3 "$D/milter.log")"
printf 'Subject: small\r\n\r\nhi\r\n' >"$WORK/small"
run mt_smtp "$PORT" s@example.org "$WORK/small" a@virt.dom
expect "full spool: a small message still fits afterwards" 0 "DATA 250"

# --- 2. the customer table disappears: 451 4.3.0, never "not held" ---
mt_stop
mv "$D/customers.cdb" "$D/customers.cdb.away"
mt_start "$D" || fail "milter restarts without a table" "$(tail -3 "$D/milter.log")"
wait_log "$D/milter.log" 'warning: customer table: .* \(every held domain gets 451 4.3.0 until it is usable\)' &&
  pass "no table: start-up warning" || fail "no table: start-up warning" "$(tail -3 "$D/milter.log")"
run mt_smtp "$PORT" s@example.org "$WORK/small" a@virt.dom
expect_line "no table: RCPT gets 451 4.3.0" out "RCPT <a@virt.dom> 451 4.3.0 Temporary lookup failure, try again later"
mv "$D/customers.cdb.away" "$D/customers.cdb"
run mt_smtp "$PORT" s@example.org "$WORK/small" a@virt.dom
expect "table back: held again without a restart" 0 "DATA 250"

# --- 3. milter stopped: milter_default_action = tempfail ---
mt_stop
run mt_smtp "$PORT" s@example.org "$WORK/small" a@virt.dom
expect "milter stopped: 451 4.7.1 at MAIL" 0 "MAIL 451 4.7.1"
mt_start "$D" || fail "milter restarts"
run mt_smtp "$PORT" s@example.org "$WORK/small" a@virt.dom
expect "milter restarted: mail flows again" 0 "DATA 250"

# --- 4. start-up refusals ---
cp "$D/autoturn.conf" "$WORK/root.conf"
sed -i 's/user = nobody/user = root/; s|milter.sock|milter2.sock|' "$WORK/root.conf"
run "$MILTER" -f -c "$WORK/root.conf"
expect "refuses to run as root" 1 "" "cannot drop privileges"
printf 'log { destination = stderr }\nmilter { listen = { "unix:/tmp/a.sock", "unix:/tmp/b.sock" } }\n' >"$WORK/two.conf"
run "$MILTER" -f -c "$WORK/two.conf"
expect "two listen sockets: configuration error" 78 "" "milter listen: exactly one socket is supported (libmilter), 2 given"
printf 'milter { bogus = 1 }\n' >"$WORK/bad.conf"
run "$MILTER" -f -c "$WORK/bad.conf"
expect "bad configuration: exit 78" 78 "" "configuration errors; not starting"
run "$MILTER" -x
expect "bad option: exit 64" 64 "" "usage: autoturn-milter"
run "$MILTER" -V
expect "-V prints the version" 0 "autoturn-milter "
mt_check_log "$D"
finish
