# SPDX-License-Identifier: ISC
# t_import.sh - "autoturnctl import" without daemons, on the fixtures of
# tests/data/import (each recipe's own formats): the dry run (fragment,
# counts, every line it does not map), each bad input with its exact error
# and nothing half-imported, --apply (held mail byte-exact in the spool
# through the spool API, owned by the spool's owner; the source appended
# and compiled; sources removed, or kept with --copy), runs repeated,
# and kill -9 at chosen points of --apply (strace fault injection) and at
# random moments: every message ends up in the spool exactly once.
# The daemons' side (delivery, ODMR with the generated fetchmailrc,
# ETRN, grants through Postfix) is tests/e2e/t_import.sh.
. "$(dirname "$0")/lib.sh"
FIX=$SRCDIR/tests/data/import
CHECK=$SRCDIR/tests/cli/import_check.py
S=$WORK/site

# fresh - a new site: the fixtures under S/old, an empty spool (owned by
# nobody when we are root, as packaged) and a configuration
fresh() {
  rm -rf "$S"
  mkdir -p "$S/spool" "$S/lib" "$S/rc"
  cp -a "$FIX/." "$S/old"
  mkdir -p "$S/old/qmail/autoturn/127.0.0.2/tmp" "$S/old/qmail/autoturn/127.0.0.4/cur"
  sed -i "s|@ROOT@|$S/old/qsmtpd|" "$S/old/qsmtpd/control/passwords"
  cat >"$S/autoturn.conf" <<CONF
spool { directory = "$S/spool" }
customers {
  source = "$S/customers"
  table = "$S/lib/customers.cdb"
}
policyd { control = "unix:$S/policyd-control.sock" }
flusher { myhostname = mx1.isp.example }
CONF
  chmod 0755 "$WORK"
  [ "$(id -u)" = 0 ] && chown nobody "$S/spool"
  cp -a "$S/old" "$S/orig"       # what the sources were, for the checks
}
ctl() { "$AUTOTURNCTL" -c "$S/autoturn.conf" "$@"; }
Q=$S/old/qmail
QA=$S/old/qmail/autoturn
held() { find "$S/spool/$1/new" "$S/spool/$1/cur" -type f 2>/dev/null | wc -l; }
check() { python3 "$CHECK" "$S/spool" "$@"; }
# big FILE - a 3 MB qmail-local message
big() {
  python3 - "$1" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"Return-Path: <big@example.org>\nDelivered-To: autoturn-127.0.0.2-a@virt.dom\n"
            b"From: <big@example.org>\nSubject: large\nMessage-ID: <large@example.org>\n\n")
    for i in range(40000):
        f.write(b"%06d ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\n" % i)
PY
}
Q2="$QA/127.0.0.2"
ALL2="$S/orig/qmail/autoturn/127.0.0.2/new/1765000000.4242.mx1.isp.example $S/orig/qmail/autoturn/127.0.0.2/cur/1765000100.4243.mx1.isp.example:2,S $S/orig/qmail/autoturn/127.0.0.2/new/1765000200.4244.mx1.isp.example"

# --- usage ---
fresh
run ctl import
expect "no recipe" 64 "" "autoturnctl: import: expected a recipe: qmail-autoturn, qsmtpd, zmailer-routes or vpopmail-roaming"
run ctl import sendmail-etrn
expect "unknown recipe" 64 "" "autoturnctl: import: unknown recipe 'sendmail-etrn'"
run ctl import qmail-autoturn --routes x
expect "an option of another recipe" 64 "" "autoturnctl: import: --routes is not an option of qmail-autoturn"
run ctl import zmailer-routes --copy
expect "--copy without held mail" 64 "" "autoturnctl: import: --copy is not an option of zmailer-routes"
run ctl import qmail-autoturn --port 0
expect "bad --port" 64 "" "autoturnctl: import: bad --port '0': a number from 1 to 65535"
run ctl import qmail-autoturn --max-bytes 5x
expect "bad --max-bytes" 64 "" "autoturnctl: import: bad --max-bytes '5x': unknown unit (use k, m, g or t)"
run ctl import qmail-autoturn --qmail
expect "option without value" 64 "" "autoturnctl: import: --qmail needs a value"
run ctl import qsmtpd --smtphost 'localhost" password "x'
expect "a --smtphost that would change the fetchmailrc" 64 "" "autoturnctl: import: bad --smtphost 'localhost\" password \"x': HOST or HOST/PORT"
run ctl import -h
expect "import -h" 0 "usage: autoturnctl [-c FILE] import RECIPE [OPTIONS] [--apply]"
run "$AUTOTURNCTL" --help
expect_line "--help lists import" out "  import       RECIPE [--apply]       move from qmail/serialmail, qsmtpd, ZMailer, vpopmail"
run ctl import qmail-autoturn --qmail "$S/none"
expect "missing qmail directory" 66 "" "$S/none/control/virtualdomains: cannot open: No such file or directory"

# --- qmail-autoturn: the dry run ---
touch "$Q2/tmp/1765000999.4299.mx1.isp.example" "$S/orig/qmail/autoturn/127.0.0.2/tmp/1765000999.4299.mx1.isp.example"
run ctl import qmail-autoturn --qmail "$Q" --port 2525
expect "qmail-autoturn dry run" 0 "# autoturnctl import qmail-autoturn: dry run, nothing changed (--apply does it)"
for line in "customer 127.0.0.2" "    # from $Q/control/virtualdomains:3" "    domain       virt.dom .virt.dom" \
  "    address      127.0.0.2" "    delivery     connecting-ip" "    trigger      connect" "    port         2525" \
  "customer 127.0.0.4" "    domain       other.example" "    address      127.0.0.4"; do
  expect_line "fragment: $line" out "$line"
done
printf '%s\n' "$OUT" | grep -Eq '^#   127\.0\.0\.2 +3 messages +[0-9]+ bytes$' &&
  printf '%s\n' "$OUT" | grep -Eq '^#   127\.0\.0\.4 +1 messages +[0-9]+ bytes$' &&
  printf '%s\n' "$OUT" | grep -Eq '^# total: 4 messages, [0-9]+ bytes for 2 customers$' &&
  pass "dry run counts messages and bytes per customer" || fail "dry-run counts" "$OUT"
expect_line "the qmail lines are said to be removed" out "# qmail-local added become the envelope and are removed from each message):"
expect_line "other virtualdomains line listed" err "$Q/control/virtualdomains:2: not imported: 'isp.example:alias-isp' is not an AutoTURN prefix (autoturn-ADDRESS)"
expect_line "ezmlm line listed" err "$Q/control/virtualdomains:6: not imported: 'lists.isp.example:ezmlm' is not an AutoTURN prefix (autoturn-ADDRESS)"
expect_line "tmp/ files named" err "$Q2: warning: tmp/ holds 1 files: a delivery is under way (stop qmail-send first); they are not imported"
expect_line "old mail warned about" err "$Q/control/virtualdomains:3: warning: 3 messages of 127.0.0.2 are older than its max-age 5d: the flusher's next sweep returns them to their senders (--max-age keeps them longer)"
[ ! -e "$S/customers" ] && [ "$(find "$S/spool" -mindepth 1 | wc -l)" = 0 ] && diff -r "$S/orig" "$S/old" >/dev/null &&
  pass "dry run changes nothing" || fail "dry run changed something" "$(find "$S/spool" "$S/customers" 2>&1)"
rm "$Q2/tmp/1765000999.4299.mx1.isp.example" "$S/orig/qmail/autoturn/127.0.0.2/tmp/1765000999.4299.mx1.isp.example"
run ctl import qmail-autoturn --qmail "$Q" --hello
expect_line "--hello with the Hello port off: said so" err "$S/autoturn.conf: warning: --hello: the Hello port is off here; set flusher { hello { enable = true } } (port 1789) so that the customers' connect-and-close still triggers delivery"

# --- bad input: each error exact, --apply refuses, nothing moves ---
# refused LABEL ERROR-LINE ARGS... : dry run and --apply both exit 65 with
# that line; spool, source and sources untouched
refused() {
  local label=$1 line=$2; shift 2
  run ctl import "$@"
  expect_line "$label: exact error" err "$line"
  [ "$RC" = 65 ] || fail "$label: dry run exits 65" "rc $RC"
  run ctl import "$@" --apply
  if [ "$RC" = 65 ] && [[ "$ERR" == *"; nothing imported"* ]] && [ ! -e "$S/customers" ] &&
    [ "$(find "$S/spool" -type f | wc -l)" = 0 ] && diff -r "$S/orig" "$S/old" >/dev/null; then
    pass "$label: --apply refuses, nothing imported or moved"
  else
    fail "$label: --apply refuses" "rc $RC" "$ERR" "$(find "$S/spool" -type f)" "$(diff -r "$S/orig" "$S/old")"
  fi
}
cp "$Q/control/virtualdomains" "$S/vd.good"
vd_plus() { cp "$S/vd.good" "$Q/control/virtualdomains"; echo "$1" >>"$Q/control/virtualdomains"; cp "$Q/control/virtualdomains" "$S/orig/qmail/control/"; }
vd_plus 'new.example autoturn-127.0.0.2'
refused "virtualdomains line that is not domain:prefix" \
  "$Q/control/virtualdomains:7: not DOMAIN:PREFIX (no ':')" qmail-autoturn --qmail "$Q"
vd_plus 'new.example:autoturn-127.0.0'
refused "prefix without an address" \
  "$Q/control/virtualdomains:7: prefix 'autoturn-127.0.0': '127.0.0' is not an IPv4 address" qmail-autoturn --qmail "$Q"
vd_plus 'joe@new.example:autoturn-127.0.0.2'
refused "an address entry" \
  "$Q/control/virtualdomains:7: domain 'joe@new.example': a single address (USER@DOMAIN): autoturn holds whole domains" qmail-autoturn --qmail "$Q"
cp "$S/vd.good" "$Q/control/virtualdomains"
cp "$S/vd.good" "$S/orig/qmail/control/virtualdomains"
printf 'Return-Path: <s@example.org>\nSubject: no Delivered-To\n\nx\n' >"$Q2/new/1765000500.1.mx1.isp.example"
cp "$Q2/new/1765000500.1.mx1.isp.example" "$S/orig/qmail/autoturn/127.0.0.2/new/"
refused "message without Delivered-To" \
  "$Q2/new/1765000500.1.mx1.isp.example: second line is not 'Delivered-To: RECIPIENT' (qmail-local writes it)" qmail-autoturn --qmail "$Q"
printf 'Return-Path: <s@example.org>\nDelivered-To: autoturn-127.0.0.9-a@virt.dom\n\nx\n' >"$Q2/new/1765000500.1.mx1.isp.example"
cp "$Q2/new/1765000500.1.mx1.isp.example" "$S/orig/qmail/autoturn/127.0.0.2/new/"
refused "Delivered-To without the prefix" \
  "$Q2/new/1765000500.1.mx1.isp.example: Delivered-To 'autoturn-127.0.0.9-a@virt.dom' lacks the prefix 'autoturn-127.0.0.2-'" qmail-autoturn --qmail "$Q"
rm "$Q2/new/1765000500.1.mx1.isp.example" "$S/orig/qmail/autoturn/127.0.0.2/new/1765000500.1.mx1.isp.example"
big "$Q2/new/1765000600.4300.mx1.isp.example"
cp "$Q2/new/1765000600.4300.mx1.isp.example" "$S/orig/qmail/autoturn/127.0.0.2/new/"
size=$(python3 -c "import sys; d=open(sys.argv[1],'rb').read(); print(len(d.split(b'\n',2)[2]) + d.count(b'\n') - 2)" "$Q2/new/1765000600.4300.mx1.isp.example")
run ctl import qmail-autoturn --qmail "$Q" --max-bytes 1M
msg=$(printf '%s\n' "$ERR" | grep 1765000600)
[[ "$msg" =~ ^"$Q2/new/1765000600.4300.mx1.isp.example: "([0-9]+)" bytes is more than customer 127.0.0.2's max-bytes (1048576)"$ ]] &&
  [ $((BASH_REMATCH[1] - size)) -gt 150 ] && [ $((BASH_REMATCH[1] - size)) -lt 400 ] &&
  pass "a message larger than the quota: exact error (its size in our spool, envelope included)" ||
  fail "over quota message" "$ERR" "body $size"
refused "a message larger than the quota" "$msg" qmail-autoturn --qmail "$Q" --max-bytes 1M
run ctl import qmail-autoturn --qmail "$Q" --max-messages 2
expect_line "more messages than max-messages" err "$S/old/qmail/autoturn/127.0.0.2/new/1765000200.4244.mx1.isp.example: would bring customer 127.0.0.2 to 3 messages, over its max-messages (2)"
mkdir -p "$QA/127.0.0.9/new"
cp "$FIX/qmail/autoturn/127.0.0.4/new/1765000300.4245.mx1.isp.example" "$QA/127.0.0.9/new/"
cp -a "$QA/127.0.0.9" "$S/orig/qmail/autoturn/"
refused "a maildir no line maps" \
  "$QA/127.0.0.9: holds mail, but no virtualdomains line maps a domain to autoturn-127.0.0.9: its mail would stay behind" qmail-autoturn --qmail "$Q"
rm -r "$QA/127.0.0.9" "$S/orig/qmail/autoturn/127.0.0.9"
printf 'customer acme\n    domain other.example\n' >"$S/customers.acme"
cp "$S/customers.acme" "$S/customers"
run ctl import qmail-autoturn --qmail "$Q" --apply
expect_line "a domain another customer has: exact error" err "$Q/control/virtualdomains:5: domain 'other.example' already belongs to customer 'acme' ($S/customers line 1)"
[ "$RC" = 65 ] && cmp -s "$S/customers" "$S/customers.acme" && [ "$(find "$S/spool" -type f | wc -l)" = 0 ] &&
  pass "conflict: --apply refuses, source unchanged" || fail "conflict refused" "rc $RC" "$(cat "$S/customers")"
rm "$S/customers"

# --- qmail-autoturn --apply ---
run ctl import qmail-autoturn --qmail "$Q" --port 2525 --max-age 3650d --apply
expect "qmail-autoturn --apply" 0 "imported 5 messages ("
expect_line "sources removed" out "removed 5 source messages"
expect_line "source appended" out "$S/customers: 2 customers appended"
expect_line "table compiled" out "$S/customers -> $S/lib/customers.cdb: 2 customers, 3 domains, 2 networks"
run check 127.0.0.2 autoturn-127.0.0.2- $ALL2 "$S/orig/qmail/autoturn/127.0.0.2/new/1765000600.4300.mx1.isp.example"
expect "127.0.0.2: every message once, envelope from the qmail lines, body byte-exact (LF -> CR LF)" 0 "ok 4"
run check 127.0.0.4 autoturn-127.0.0.4- "$S/orig/qmail/autoturn/127.0.0.4/new/1765000300.4245.mx1.isp.example"
expect "127.0.0.4: its message" 0 "ok 1"
grep -qx 'X-Autoturn-Sender: <>' $(grep -l 'Message-ID: <bounce@mx2.example.net>' "$S"/spool/127.0.0.2/new/*) &&
  pass "the bounce keeps the null sender" || fail "null sender"
[ "$(find "$Q2/new" "$Q2/cur" "$QA/127.0.0.4/new" -type f | wc -l)" = 0 ] &&
  pass "every source message removed" || fail "sources removed" "$(find "$QA" -type f)"
if [ "$(id -u)" = 0 ]; then
  [ -z "$(find "$S/spool/127.0.0.2" "$S/spool/127.0.0.4" ! -user nobody)" ] &&
    pass "the spool files belong to the spool's owner (nobody)" || fail "owner" "$(ls -lR "$S/spool")"
fi
run ctl customers 127.0.0.2
expect "the new customer is in the table" 0 "    trigger      connect"
expect_line "with the --port" out "    port         2525"
run ctl lookup domain x.sub.virt.dom
expect "its subdomains are held" 0 "x.sub.virt.dom: customer 127.0.0.2 (rule .virt.dom)"
[ "$(grep -c '^import\.' "$S/spool/.import-journal")" = 5 ] && pass "journal: 5 records" ||
  fail "journal" "$(cat "$S/spool/.import-journal")"
run ctl queue 127.0.0.2
expect "autoturnctl queue lists the imported mail" 0 "-- 127.0.0.2: 4 messages"

cp -a "$S/orig/qmail/autoturn/127.0.0.2/." "$Q2/"       # the same mail once more
cp "$S/customers" "$S/customers.before"
run ctl import qmail-autoturn --qmail "$Q" --port 2525 --max-age 3650d --apply
expect "second --apply" 0 "imported 0 messages (0 bytes) into $S/spool; 4 imported before"
expect_line "existing customer not appended again" err "$Q/control/virtualdomains:3: customer 127.0.0.2 is already in $S/customers (line 2): not appended"
cmp -s "$S/customers" "$S/customers.before" && [ "$(held 127.0.0.2)" = 4 ] &&
  [ "$(find "$Q2/new" "$Q2/cur" -type f | wc -l)" = 0 ] &&
  pass "second run: nothing doubled, source unchanged, the old copies removed" ||
  fail "second run" "$(held 127.0.0.2)" "$(diff "$S/customers.before" "$S/customers")"

# --- --copy, then the journal lost: found again by tag ---
fresh
run ctl import qmail-autoturn --qmail "$Q" --copy --apply
expect "--copy" 0 "kept the source messages (--copy)"
diff -r "$S/orig" "$S/old" >/dev/null && [ "$(held 127.0.0.2)" = 3 ] && pass "--copy leaves every source in place" ||
  fail "--copy" "$(diff -r "$S/orig" "$S/old")"
run ctl import qmail-autoturn --qmail "$Q" --copy --apply
expect "--copy twice: nothing doubled" 0 "imported 0 messages (0 bytes) into $S/spool; 4 imported before"
rm "$S/spool/.import-journal"
run ctl import qmail-autoturn --qmail "$Q" --apply
expect "journal lost: the copies are found by tag" 0 "imported 0 messages (0 bytes) into $S/spool; 4 found in the spool from a run that was cut short"
run check 127.0.0.2 autoturn-127.0.0.2- $ALL2
expect "journal lost: still every message once" 0 "ok 3"
[ "$(grep -c '^import\.' "$S/spool/.import-journal")" = 4 ] && [ "$(find "$QA" -type f -path '*/new/*' | wc -l)" = 0 ] &&
  pass "recorded again, sources removed" || fail "recovery journal" "$(cat "$S/spool/.import-journal")"

# --- kill -9 during --apply ---
# at chosen points (strace injects SIGKILL at the Nth system call of a
# kind), then at random moments; a plain run finishes; every message once
fresh
python3 - "$Q2/new" <<'PY'
import sys
for i in range(40):
    with open("%s/17650%05d.%d.mx1.isp.example" % (sys.argv[1], 1000 + i, 7000 + i), "w") as f:
        f.write("Return-Path: <s%d@example.org>\nDelivered-To: autoturn-127.0.0.2-r%d@virt.dom\n"
                "Subject: n%d\nMessage-ID: <n%d@example.org>\n\nmessage %d\n" % (i, i, i, i, i))
PY
cp -a "$Q2/new/." "$S/orig/qmail/autoturn/127.0.0.2/new/"
apply() { ctl import qmail-autoturn --qmail "$Q" --max-age 3650d --apply "$@"; }
kill_at() {   # LABEL SYSCALL N
  strace -f -qq -o /dev/null -e trace="$2" -e inject="$2:signal=SIGKILL:when=$3" \
    "$AUTOTURNCTL" -c "$S/autoturn.conf" import qmail-autoturn --qmail "$Q" --max-age 3650d --apply >/dev/null 2>&1
  local rc=$?
  [ $rc = 137 ] && pass "killed: $1" || fail "kill -9 at $1" "rc $rc"
}
# unrecorded - spool copies whose tag the journal does not have
unrecorded() {
  local f t
  for f in "$S"/spool/127.0.0.2/new/*; do
    t=$(sed -n '/^X-Autoturn-End:/q;s/^X-Autoturn-Queue-Id: //p' "$f")
    grep -q "^$t " "$S/spool/.import-journal" || echo "$f"
  done
}
kill_at "linkat #3 (before a copy enters new/)" linkat 3
[ "$(held 127.0.0.2)" = 2 ] && [ -z "$(unrecorded)" ] && pass "2 copies, both recorded" ||
  fail "after linkat kill" "$(held 127.0.0.2)" "$(unrecorded)"
kill_at "unlinkat #4 (copy durable, not yet recorded)" unlinkat 4
u=$(unrecorded)
[ "$(held 127.0.0.2)" = 6 ] && [ "$(printf '%s\n' "$u" | grep -c .)" = 1 ] &&
  pass "the kill left one durable copy that the journal does not know" || fail "after unlinkat kill" "$(held 127.0.0.2)" "$u"
kill_at "fdatasync #5 (record written, not synced)" fdatasync 5
[ -z "$(unrecorded)" ] && pass "the next run recorded it instead of copying it again" ||
  fail "unrecorded copy after the next run" "$(unrecorded)"
kill_at "unlink #3 (removing a recorded source)" unlink 3
for d in 0.02 0.05 0.1 0.2; do
  timeout -s KILL $d "$AUTOTURNCTL" -c "$S/autoturn.conf" import qmail-autoturn --qmail "$Q" --max-age 3650d --apply >/dev/null 2>&1
done
run apply
expect "a plain run after the kills finishes" 0 "removed "
run check 127.0.0.2 autoturn-127.0.0.2- $ALL2 "$S"/orig/qmail/autoturn/127.0.0.2/new/1765001*
expect "after kill -9 at every step: every message exactly once, byte-exact" 0 "ok 43"
[ "$(find "$Q2" -type f | wc -l)" = 0 ] &&
  pass "every source removed" || fail "sources after kills" "$(find "$Q2" -type f)"
n=$(grep '^import\.' "$S/spool/.import-journal" | cut -d' ' -f1 | sort | uniq -d | wc -l)
[ "$n" = 0 ] && [ "$(grep -c '^import\.' "$S/spool/.import-journal")" = 44 ] &&
  pass "journal: 44 records, none twice" || fail "journal after kills" "$(cat "$S/spool/.import-journal")"
run apply
expect "and one more run imports nothing" 0 "imported 0 messages (0 bytes)"

# --- qsmtpd ---
fresh
P=$S/old/qsmtpd
run ctl import qsmtpd --qmail "$P" --rc-dir "$S/rc" --odmr-port 2366
expect "qsmtpd dry run" 0 "    trigger      atrn"
secret=$(printf '%s' 'dial-up:"26\45"' | "$AUTOTURNCTL" secret)
expect_line "the password became our stored secret" out "    secret       $secret"
expect_line "fetchmailrc announced" out "#   $S/rc/fetchmailrc.roamer"
expect_line "ODMR off in the configuration: said so" err "$S/autoturn.conf: warning: ODMR is off here; set flusher { odmr { enable = true } } (port 366) for the customers' fetchmail"
[[ "$OUT$ERR" != *'26\45'* ]] && pass "the password is not shown" || fail "password shown" "$OUT"
run ctl import qsmtpd --qmail "$P" --rc-dir "$S/rc" --odmr-port 2366 --apply
expect "qsmtpd --apply" 0 "$S/rc/fetchmailrc.roamer: written (mode 0600): give it to roamer as ~/.fetchmailrc"
run check roamer roamer- "$S/orig/qsmtpd/home/roamer/Maildir/new/1765000400.5001.mx1.isp.example"
expect "qsmtpd: held mail imported (prefix roamer-)" 0 "ok 1"
! grep -qF '26\45' "$S/customers" && grep -qx "    secret       $secret" "$S/customers" &&
  pass "the customer source has the secret, never the password" || fail "source secret" "$(cat "$S/customers")"
[ "$(stat -c %a "$S/rc/fetchmailrc.roamer")" = 600 ] && pass "fetchmailrc mode 0600" || fail "rc mode"
for line in "poll mx1.isp.example" "    protocol ODMR" "    service 2366" '    user "roamer"' \
  '    password "dial-up:\x2226\\45\x22"' "    fetchdomains incoming.dom.ain" "    smtphost localhost/25"; do
  grep -qxF "$line" "$S/rc/fetchmailrc.roamer" && pass "fetchmailrc: $line" || fail "fetchmailrc: $line" "$(cat "$S/rc/fetchmailrc.roamer")"
done
run ctl import qsmtpd --qmail "$P" --rc-dir "$S/rc" --odmr-port 2366 --apply
expect "qsmtpd twice: the fetchmailrc is unchanged" 0 "$S/rc/fetchmailrc.roamer: unchanged"
run ctl import qsmtpd --qmail "$P" --rc-dir "$S/rc" --odmr-port 2367
expect_line "a different fetchmailrc in the way" err "$S/rc/fetchmailrc.roamer: exists and differs: not replaced (remove it, or give --rc-dir)"
fresh
echo 'second.dom.ain:roamer:other:/var/mail/x' >>"$S/old/qsmtpd/control/passwords"
echo 'third.dom.ain:bob:/var/mail/bob' >>"$S/old/qsmtpd/control/passwords"
cp "$S/old/qsmtpd/control/passwords" "$S/orig/qsmtpd/control/"
run ctl import qsmtpd --qmail "$P" --rc-dir "$S/rc"
expect_line "two passwords for one user" err "$P/control/passwords:3: user roamer has another password at line 2: one customer has one secret"
refused "passwords line with a missing field" \
  "$P/control/passwords:4: missing field: expected DOMAIN:USER:PASSWORD:MAILDIR" qsmtpd --qmail "$P" --rc-dir "$S/rc"
[ -z "$(ls "$S/rc")" ] && pass "refused: no fetchmailrc written" || fail "rc written" "$(ls "$S/rc")"

# --- zmailer-routes ---
fresh
Z=$S/old/zmailer/routes
run ctl import zmailer-routes --routes "$Z"
expect "zmailer dry run" 0 "# ZMailer's queue is not imported"
expect_line "another channel: listed as not imported" err "$Z:7: not imported: channel 'smtp' (only smtp-etrn routes hold mail for ETRN)"
want=$(printf '%s\n' "customer mail.client.dom" "    # from $Z:2" "    domain       client.dom .client.dom" \
  "    delivery     host mail.client.dom" "    trigger      etrn" "customer mx.example" "    # from $Z:4" \
  "    domain       mx.example" "    delivery     mx mx.example" "    trigger      etrn" "customer 127.0.0.3" \
  "    # from $Z:5" "    domain       etrn.example .etrn.example" "    delivery     host 127.0.0.3" "    trigger      etrn")
got=$(printf '%s\n' "$OUT" | grep -v '^#' | grep -v '^$')
[ "$got" = "$want" ] && pass "zmailer fragment: one customer per target, host / mx / address" || fail "zmailer fragment" "$got"
printf '# our customers\n' >"$S/customers.real"
ln -s customers.real "$S/customers"
run ctl import zmailer-routes --routes "$Z" --apply
expect "zmailer --apply" 0 "$S/customers -> $S/lib/customers.cdb: 3 customers, 5 domains, 0 networks"
[ -L "$S/customers" ] && head -1 "$S/customers.real" | grep -qx '# our customers' && grep -qx 'customer 127.0.0.3' "$S/customers.real" &&
  pass "a source that is a symbolic link: the file it points to is appended to" || fail "symlinked source" "$(ls -l "$S")"
run ctl lookup domain a.client.dom
expect "ETRN customer in the table" 0 "a.client.dom: customer mail.client.dom (rule .client.dom)"
printf 'bad.example\tsmtp-etrn\n' >>"$Z"
cp "$Z" "$S/orig/zmailer/routes"
run ctl import zmailer-routes --routes "$Z" --apply
expect_line "routes line without CHANNEL!HOST" err "$Z:8: expected CHANNEL!HOST after the domain"
[ "$RC" = 65 ] && pass "bad routes line: refused" || fail "bad routes refused" "rc $RC"

# --- vpopmail-roaming (grants need autoturn-policyd: tests/e2e/t_import.sh) ---
fresh
V=$S/old/vpopmail
now=$(date +%s)
printf '192.0.2.7:allow,RELAYCLIENT="",RBLSMTPD=""\t%s\n192.0.2.8:allow,RELAYCLIENT="",RBLSMTPD=""\t%s\n' \
  $((now - 600)) $((now - 20000)) >"$V/open-smtp"
# the fixture is what tcpserver reads: Debian's tcprules compiles it (with
# the open-smtp rules, as vpopmail's update_rules feeds them) and
# tcprulescheck finds RELAYCLIENT for the addresses it should
{ cat "$V/tcp.smtp"; cut -f1 "$V/open-smtp"; } | tcprules "$V/tcp.smtp.cdb" "$V/tcp.smtp.tmp"
[ $? = 0 ] && pass "tcprules compiles tcp.smtp + open-smtp" || fail "tcprules"
for ip in 10.0.0.7 192.168.1.9 127.0.0.1 192.0.2.7; do
  TCPREMOTEIP=$ip tcprulescheck "$V/tcp.smtp.cdb" | grep -q '^set environment variable RELAYCLIENT=$' &&
    pass "tcprulescheck: $ip relays" || fail "tcprulescheck $ip" "$(TCPREMOTEIP=$ip tcprulescheck "$V/tcp.smtp.cdb")"
done
TCPREMOTEIP=10.0.0.11 tcprulescheck "$V/tcp.smtp.cdb" | grep -q RELAYCLIENT &&
  fail "tcprulescheck: 10.0.0.11 must not relay" || pass "tcprulescheck: 10.0.0.11 does not relay"
printf 'customer acme\n    address 127.0.0.2\n    domain virt.dom\n' >"$S/customers"
run ctl import vpopmail-roaming --vpopmail-etc "$V"
expect "vpopmail dry run" 0 "# grants for autoturn-policyd"
printf '%s\n' "$OUT" | grep -Eq '^#   192\.0\.2\.7 +login [0-9-]+ [0-9:]+, relays until [0-9-]+ [0-9:]+ \(2h(49|50)m[0-9]*s?\ left\)$' &&
  pass "a live login: a grant for what is left of 180 minutes" || fail "grant line" "$OUT"
expect_line "an expired login is listed" err "$V/open-smtp:2: not imported: the login of 192.0.2.8 at $(date -d @$((now - 20000)) '+%Y-%m-%d %H:%M:%S') has expired"
for line in "#   127.0.0.0/8          $V/tcp.smtp:1  Postfix mynetworks" \
  "#   192.168.1.0/24       $V/tcp.smtp:2  Postfix mynetworks" \
  "#   10.0.0.4/30          $V/tcp.smtp:3  Postfix mynetworks" \
  "#   10.0.0.8/31          $V/tcp.smtp:3  Postfix mynetworks" \
  "#   10.0.0.10            $V/tcp.smtp:3  Postfix mynetworks" \
  "#   127.0.0.2            $V/tcp.smtp:4  \"relay yes\" on customer acme" \
  "# main.cf: mynetworks = 127.0.0.0/8, 192.168.1.0/24, 10.0.0.4/30, 10.0.0.8/31, 10.0.0.10"; do
  expect_line "relay network: ${line#\#   }" out "$line"
done
expect_line "host-name rule listed" err "$V/tcp.smtp:5: not imported: '=friend.example' is a host name rule (=HOST): autoturn relays by address or network only"
expect_line "RELAYCLIENT with a value listed" err "$V/tcp.smtp:6: not imported: RELAYCLIENT=\"@relay.example\" (qmail appends it to every recipient): place it by hand"
expect_line "connection rule listed" err "$V/tcp.smtp:7: not imported: no RELAYCLIENT (a connection rule: it stays with your MTA's access controls)"
run ctl import vpopmail-roaming --vpopmail-etc "$V" --relay-clear-minutes 5
expect_line "--relay-clear-minutes: the same login has expired" err "$V/open-smtp:1: not imported: the login of 192.0.2.7 at $(date -d @$((now - 600)) '+%Y-%m-%d %H:%M:%S') has expired"
run ctl import vpopmail-roaming --vpopmail-etc "$V" --apply
expect "grants without autoturn-policyd: 69" 69 "" "autoturnctl: autoturn-policyd does not answer: "
cp "$V/open-smtp" "$S/open-smtp.good"
printf '300.1.1.1:allow,RELAYCLIENT="",RBLSMTPD=""\t%s\n' "$now" >>"$V/open-smtp"
run ctl import vpopmail-roaming --vpopmail-etc "$V"
expect_line "open-smtp line with a bad address" err "$V/open-smtp:3: bad address '300.1.1.1': not an IPv4 or IPv6 address"
[ "$RC" = 65 ] && pass "bad address: 65" || fail "bad address rc" "$RC"
cp "$S/open-smtp.good" "$V/open-smtp"
printf '192.0.2.9:allow,RELAYCLIENT="",RBLSMTPD=""\tyesterday\n' >>"$V/open-smtp"
printf '192.0.2.9:allow,RELAYCLIENT="",RBLSMTPD=""\t%s\n' $((now + 86400)) >>"$V/open-smtp"
run ctl import vpopmail-roaming --vpopmail-etc "$V" --apply
expect_line "open-smtp line with a bad time" err "$V/open-smtp:3: bad time 'yesterday': not a number"
expect_line "open-smtp line with a time in the future" err "$V/open-smtp:4: bad time '$((now + 86400))': in the future"
expect "bad times: --apply refuses before asking autoturn-policyd" 65 "" "autoturnctl: import vpopmail-roaming: 2 errors; nothing imported"

finish
