# SPDX-License-Identifier: ISC
# t_show.sh - autoturnctl show [--body] [CUSTOMER/]ID, like postcat -q:
# the exact envelope and header output (CR LF shown as line ends, control
# characters as '?'), the body only with --body, a message on hold, an id
# found in any customer's spool; not found (1), malformed (65, file left
# where it is), bad ids and options (64).
. "$(dirname "$0")/lib.sh"
: "${SPOOL_PUT:?set by ctest}"
CONF=$WORK/autoturn.conf
cat >"$CONF" <<CONF
spool { directory = "$WORK/spool" }
CONF
mkdir -m 0700 "$WORK/spool"
ctl() { "$AUTOTURNCTL" -c "$CONF" "$@"; }

printf 'Subject: hello\r\nX-Odd: a\001b\r\n\tfolded\r\n\r\nfirst line\r\nsecond\033[31m red\r\n' |
  "$SPOOL_PUT" "$WORK/spool" acme "s@example.org|BODY=8BITMIME" "a@virt.dom|NOTIFY=NEVER" b@virt.dom >"$WORK/id"
ID=$(cat "$WORK/id")
printf 'Subject: other\n\nx\n' | "$SPOOL_PUT" "$WORK/spool" beta "" x@beta.example >/dev/null
arrival=${ID%%.*}
when=$(date -d "@$arrival" '+%Y-%m-%d %H:%M:%S')
size=$(printf 'Subject: hello\r\nX-Odd: a\001b\r\n\tfolded\r\n\r\nfirst line\r\nsecond\033[31m red\r\n' | wc -c)

cat >"$WORK/want-env" <<EOF
*** ENVELOPE acme/$ID ***
file: $WORK/spool/acme/new/$ID
state: queued
message_size: $size
customer: acme
arrival: $when ($arrival)
queue_id: -
sender: <s@example.org> BODY=8BITMIME
recipient: <a@virt.dom> NOTIFY=NEVER
recipient: <b@virt.dom>
*** HEADERS acme/$ID ***
Subject: hello
X-Odd: a?b
	folded
EOF
{ cat "$WORK/want-env"; echo "*** END acme/$ID ***"; } >"$WORK/want"
run ctl show "$ID"
[ "$RC" = 0 ] && [ "$OUT" = "$(cat "$WORK/want")" ] && pass "show ID: envelope and headers, exactly" ||
  fail "show ID" "rc $RC" "$(diff <(echo "$OUT") "$WORK/want")" "$ERR"
run ctl show "acme/$ID"
[ "$RC" = 0 ] && [ "$OUT" = "$(cat "$WORK/want")" ] && pass "show CUSTOMER/ID: the same" || fail "show CUSTOMER/ID" "$OUT"

{ cat "$WORK/want-env"; echo "*** BODY acme/$ID ***"; echo "first line"; echo "second?[31m red"
  echo "*** END acme/$ID ***"; } >"$WORK/want-body"
run ctl show --body "$ID"
[ "$RC" = 0 ] && [ "$OUT" = "$(cat "$WORK/want-body")" ] && pass "show --body: the body too, escape shown as '?'" ||
  fail "show --body" "$(diff <(echo "$OUT") "$WORK/want-body")"

mkdir -m 0700 "$WORK/spool/acme/hold" && mv "$WORK/spool/acme/new/$ID" "$WORK/spool/acme/hold/"
run ctl show "$ID"
expect_line "a message on hold: its state" out "state: on hold"
expect_line "a message on hold: its file" out "file: $WORK/spool/acme/hold/$ID"

run ctl show 1.M1P1Q1.nowhere
expect "unknown id: exit 1" 1 "" "autoturnctl: show: no such message: 1.M1P1Q1.nowhere"
run ctl show "beta/$ID"
expect "id of another customer: exit 1" 1 "" "autoturnctl: show: $WORK/spool/beta: no such spool file $ID in new/, cur/ or hold/"
printf 'garbage\n' >"$WORK/spool/beta/new/2.M1P1Q1.x"
run ctl show 2.M1P1Q1.x
expect "malformed: exit 65" 65 "" "autoturnctl: show: malformed spool file $WORK/spool/beta/new/2.M1P1Q1.x: line 1: missing X-Autoturn-Version"
[ -f "$WORK/spool/beta/new/2.M1P1Q1.x" ] && pass "show left the malformed file in new/" || fail "malformed file moved"
run ctl show ../etc/passwd
expect "customer part with '..': exit 64" 64 "" "autoturnctl: show: bad customer name in '../etc/passwd'"
run ctl show acme/.lock
expect "a dot file: exit 64" 64 "" "autoturnctl: show: bad spool id '.lock'"
run ctl show
expect "no id: exit 64" 64 "" "autoturnctl: show: expected [--body] [CUSTOMER/]ID"
run ctl show --headers "$ID"
expect "bad option: exit 64" 64 "" "autoturnctl: show: bad option '--headers'"
run ctl show a b
expect "two ids: exit 64" 64 "" "autoturnctl: show: unexpected argument 'b'"

finish
