# SPDX-License-Identifier: ISC
# t_queue.sh - autoturnctl queue: summary and per-message listing, oldest
# first, malformed spool files moved aside, bad names refused.
. "$(dirname "$0")/lib.sh"
: "${SPOOL_PUT:?set by ctest}"
CONF=$WORK/autoturn.conf
cat >"$CONF" <<CONF
spool { directory = "$WORK/spool" }
CONF

run "$AUTOTURNCTL" -c "$CONF" queue
expect "no spool directory yet: empty queue" 0 "-- 0 messages, 0 bytes held for 0 customers" \
  "autoturnctl: warning: spool directory $WORK/spool does not exist yet"

mkdir -m 0700 "$WORK/spool"
msg() { printf 'Subject: %s\r\n\r\nbody %s\r\n' "$1" "$1"; }
id1=$(msg one | "$SPOOL_PUT" "$WORK/spool" acme sender@example.org a@virt.dom b@virt.dom)
sleep 1
id2=$(msg two | "$SPOOL_PUT" "$WORK/spool" acme "" "c@virt.dom|NOTIFY=NEVER")
id3=$(msg three | "$SPOOL_PUT" "$WORK/spool" beta s2@example.org x@beta.example)
[ -n "$id1" ] && [ -n "$id2" ] && [ -n "$id3" ] && pass "three messages held" || fail "three messages held"
bytes_acme=$(( $(stat -c %s "$WORK/spool/acme/new/$id1") + $(stat -c %s "$WORK/spool/acme/new/$id2") ))

run "$AUTOTURNCTL" -c "$CONF" queue
expect "summary total" 0 "-- 3 messages, $(( bytes_acme + $(stat -c %s "$WORK/spool/beta/new/$id3") )) bytes held for 2 customers"
if printf '%s\n' "$OUT" | grep -Eq "^acme +2 +$bytes_acme +[0-9]+s$"; then pass "acme: 2 messages, bytes, age"; else fail "acme line" "$OUT"; fi

run "$AUTOTURNCTL" -c "$CONF" queue acme
expect "per-customer listing" 0 "-- acme: 2 messages, $bytes_acme bytes"
first=$(printf '%s\n' "$OUT" | sed -n 2p)
[[ "$first" == "$id1 "* ]] && pass "oldest first" || fail "oldest first" "$OUT"
[[ "$OUT" == *"<sender@example.org>"* && "$OUT" == *"<b@virt.dom>"* && "$OUT" == *"<>"* ]] \
  && pass "senders and recipients shown" || fail "senders and recipients shown" "$OUT"

printf 'garbage\n' >"$WORK/spool/acme/new/1.M1P1Q1.bad"
run "$AUTOTURNCTL" -c "$CONF" queue acme
expect "malformed file reported" 0 "(malformed: moved to bad/)"
[ -f "$WORK/spool/acme/bad/1.M1P1Q1.bad" ] && [ ! -e "$WORK/spool/acme/new/1.M1P1Q1.bad" ] \
  && pass "malformed file moved to bad/" || fail "malformed file moved" "$(ls -R "$WORK/spool/acme")"
[[ "$ERR" == *"malformed spool file moved to $WORK/spool/acme/bad"* ]] \
  && pass "one log line for the malformed file" || fail "log line" "$ERR"

run "$AUTOTURNCTL" -c "$CONF" queue nobody
expect "customer with nothing held" 0 "-- nobody: 0 messages, 0 bytes"

run "$AUTOTURNCTL" -c "$CONF" queue ../etc
expect "name escaping the spool" 64 "" "autoturnctl: queue: bad customer name '../etc': contains '/'"

finish
