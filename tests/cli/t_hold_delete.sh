# SPDX-License-Identifier: ISC
# t_hold_delete.sh - autoturnctl hold, release and delete, like postsuper
# -h, -H and -d: by id (ID or CUSTOMER/ID, several at once) and by
# customer (--customer C); delete only with --yes (without it: what would
# go, nothing done, exit 64); each action logged where the daemons log
# (log { destination = stderr } here) with the customer, id and uid; the
# hold/ directory made by root belongs to the spool's owner; unknown ids
# (1), bad ids and options (64).
. "$(dirname "$0")/lib.sh"
: "${SPOOL_PUT:?set by ctest}"
CONF=$WORK/autoturn.conf
cat >"$CONF" <<CONF
log { destination = stderr }
spool { directory = "$WORK/spool" }
CONF
mkdir -m 0700 "$WORK/spool"
ctl() { "$AUTOTURNCTL" -c "$CONF" "$@"; }
put() { printf 'Subject: %s\r\n\r\nx\r\n' "$2" | "$SPOOL_PUT" "$WORK/spool" "$1" s@example.org "r@$1.example"; }
a1=$(put acme a1) a2=$(put acme a2) a3=$(put acme a3) b1=$(put beta b1)
chown -R nobody:nogroup "$WORK/spool"
uid=$(id -u)
logline() {  # logline STREAM-TEXT CUSTOMER ID WHAT CMD: the log line is there
  printf '%s\n' "$1" | grep -Eqx "autoturnctl\[[0-9]+\]: $2: id=$3: $4 by the administrator \(autoturnctl $5, uid $uid\)"
}
where() { (cd "$WORK/spool" && find . -type f -path "*/$1" | sed 's|^\./||'); }

# --- hold ---
run ctl hold "$a1" "acme/$a2"
expect "hold two ids" 0
[ "$OUT" = "acme/$a1: put on hold
acme/$a2: put on hold" ] && pass "hold: one line per message" || fail "hold output" "$OUT"
[ "$(where "$a1")" = "acme/hold/$a1" ] && [ "$(where "$a2")" = "acme/hold/$a2" ] &&
  pass "both moved to acme/hold/" || fail "hold moved" "$(where "$a1") $(where "$a2")"
logline "$ERR" acme "$a1" "put on hold" hold && logline "$ERR" acme "$a2" "put on hold" hold &&
  pass "hold: one log line per message" || fail "hold log" "$ERR"
[ "$(stat -c '%U:%G %a' "$WORK/spool/acme/hold")" = "nobody:nogroup 700" ] &&
  pass "hold/ made by root belongs to the spool's owner, mode 700" ||
  fail "hold/ owner" "$(stat -c '%U:%G %a' "$WORK/spool/acme/hold")"
run ctl hold "$a1"
expect "hold of a message on hold: exit 0, said" 0 "" \
  "autoturnctl: hold: $WORK/spool/acme: $a1 is already on hold"
[ "$(where "$a1")" = "acme/hold/$a1" ] && pass "still on hold" || fail "still on hold"
run ctl hold --customer acme
expect_line "hold --customer: the one left" out "acme/$a3: put on hold"
expect_line "hold --customer: summary" out "-- acme: 1 message put on hold"

# --- release ---
run ctl release "$a1"
expect_line "release one" out "acme/$a1: released from hold"
[ "$(where "$a1")" = "acme/new/$a1" ] && pass "released back to new/" || fail "release moved" "$(where "$a1")"
logline "$ERR" acme "$a1" "released from hold" release && pass "release logged" || fail "release log" "$ERR"
run ctl release "$b1"
expect "release of a message not on hold: exit 0, said" 0 "" \
  "autoturnctl: release: $WORK/spool/beta: $b1 is not on hold"
run ctl release --customer acme
expect_line "release --customer: summary" out "-- acme: 2 messages released from hold"
[ -z "$(ls -A "$WORK/spool/acme/hold")" ] && [ "$(ls "$WORK/spool/acme/new" | wc -l)" = 3 ] &&
  pass "release --customer: hold/ empty, 3 in new/" || fail "release --customer" "$(ls -R "$WORK/spool/acme")"

# --- delete ---
run ctl delete "$a1"
expect "delete without --yes: exit 64" 64 "would delete acme/$a1" "autoturnctl: delete: nothing done: confirm with --yes"
[ "$(where "$a1")" = "acme/new/$a1" ] && pass "without --yes nothing deleted" || fail "deleted without --yes"
! logline "$ERR" acme "$a1" deleted delete && pass "and nothing logged" || fail "logged without --yes" "$ERR"
run ctl delete --customer acme
expect "delete --customer without --yes: exit 64" 64 "-- acme: 3 messages to be deleted"
run ctl hold "$a2"
run ctl delete --yes "$a1" "acme/$a2"
expect "delete --yes two ids (one on hold)" 0
[ "$OUT" = "acme/$a1: deleted
acme/$a2: deleted" ] && pass "delete: one line per message" || fail "delete output" "$OUT"
[ -z "$(where "$a1")" ] && [ -z "$(where "$a2")" ] && pass "both files gone (new/ and hold/)" ||
  fail "delete removed" "$(where "$a1") $(where "$a2")"
logline "$ERR" acme "$a1" deleted delete && logline "$ERR" acme "$a2" deleted delete &&
  pass "delete: one log line per message" || fail "delete log" "$ERR"
run ctl delete --customer beta --yes
expect_line "delete --customer --yes: summary" out "-- beta: 1 message deleted"
logline "$ERR" beta "$b1" deleted delete && pass "delete --customer logged" || fail "delete --customer log" "$ERR"
[ -z "$(ls -A "$WORK/spool/beta/new")" ] && pass "beta's spool empty" || fail "beta empty"

# --- errors ---
run ctl delete --yes "$a1"
expect "delete of a gone id: exit 1" 1 "" "autoturnctl: delete: no such message: $a1"
run ctl hold 1.M1P1Q1.nowhere "$a3"
expect "one unknown among known: exit 1, the known one done" 1 "acme/$a3: put on hold" \
  "autoturnctl: hold: no such message: 1.M1P1Q1.nowhere"
run ctl release acme/../x
expect "release acme/../x: exit 64" 64 "" "autoturnctl: release: bad spool id in 'acme/../x'"
run ctl hold
expect "hold without ids: exit 64" 64 "" "autoturnctl: hold: expected ID... or --customer C"
run ctl hold "$a3" --customer acme
expect "ids and --customer: exit 64" 64 "" "autoturnctl: hold: expected ID... or --customer C"
run ctl hold --yes "$a3"
expect "--yes is delete's: exit 64" 64 "" "autoturnctl: hold: bad option '--yes'"
run ctl delete --customer ../etc --yes
expect "bad customer: exit 64" 64 "" "autoturnctl: delete: bad customer name '../etc': contains '/'"

finish
