# SPDX-License-Identifier: ISC
# t_queue.sh - autoturnctl queue: summary and per-message listing, oldest
# first, messages on hold counted and marked, --json (parsed), bad names
# refused; and queue is read-only: it never creates, moves or changes a
# spool file, not even a malformed one.
. "$(dirname "$0")/lib.sh"
: "${SPOOL_PUT:?set by ctest}"
CONF=$WORK/autoturn.conf
cat >"$CONF" <<CONF
log { destination = stderr }
spool { directory = "$WORK/spool" }
CONF
# snapshot - every path of the spool with type, size, mode, owner, mtime
snapshot() { find "$WORK/spool" -printf '%P %y %s %m %u %g %T@\n' | sort; }
json() {  # json PYTHON-EXPRESSION: evaluated with d = the JSON on stdin; prints its value
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

run "$AUTOTURNCTL" -c "$CONF" queue
expect "no spool directory yet: empty queue" 0 "-- 0 messages, 0 bytes held for 0 customers" \
  "autoturnctl: warning: spool directory $WORK/spool does not exist yet"
run "$AUTOTURNCTL" -c "$CONF" queue --json
[ "$RC" = 0 ] && [ "$(printf '%s' "$OUT" | json 'd')" = "{'customers': [], 'messages': 0, 'bytes': 0, 'on_hold': 0}" ] &&
  pass "no spool directory yet: --json" || fail "empty --json" "$OUT"
[ ! -e "$WORK/spool" ] && pass "queue created no spool directory" || fail "queue created the spool"

mkdir -m 0700 "$WORK/spool"
msg() { printf 'Subject: %s\r\n\r\nbody %s\r\n' "$1" "$1"; }
id1=$(msg one | "$SPOOL_PUT" "$WORK/spool" acme sender@example.org a@virt.dom b@virt.dom)
sleep 1
id2=$(msg two | "$SPOOL_PUT" "$WORK/spool" acme "" "c@virt.dom|NOTIFY=NEVER")
id3=$(msg three | "$SPOOL_PUT" "$WORK/spool" beta s2@example.org x@beta.example)
[ -n "$id1" ] && [ -n "$id2" ] && [ -n "$id3" ] && pass "three messages held" || fail "three messages held"
s1=$(stat -c %s "$WORK/spool/acme/new/$id1") s2=$(stat -c %s "$WORK/spool/acme/new/$id2")
s3=$(stat -c %s "$WORK/spool/beta/new/$id3")
bytes_acme=$((s1 + s2))

run "$AUTOTURNCTL" -c "$CONF" queue
expect_line "summary: header" out "CUSTOMER                  MESSAGES      BYTES     OLDEST  ON-HOLD"
expect "summary total" 0 "-- 3 messages, $((bytes_acme + s3)) bytes held for 2 customers"
if printf '%s\n' "$OUT" | grep -Eqx "acme +2 +$bytes_acme +[0-9]+s +0"; then pass "acme: 2 messages, bytes, age, 0 on hold"; else fail "acme line" "$OUT"; fi

run "$AUTOTURNCTL" -c "$CONF" queue acme
expect "per-customer listing" 0 "-- acme: 2 messages, $bytes_acme bytes"
first=$(printf '%s\n' "$OUT" | sed -n 2p)
[[ "$first" == "$id1 "* ]] && pass "oldest first" || fail "oldest first" "$OUT"
[[ "$OUT" == *"<sender@example.org>"* && "$OUT" == *"<b@virt.dom>"* && "$OUT" == *"<>"* ]] \
  && pass "senders and recipients shown" || fail "senders and recipients shown" "$OUT"

# --- on hold: counted, marked '!', in --json ---
mkdir -m 0700 "$WORK/spool/acme/hold"
mv "$WORK/spool/acme/new/$id2" "$WORK/spool/acme/hold/"
run "$AUTOTURNCTL" -c "$CONF" queue
printf '%s\n' "$OUT" | grep -Eqx "acme +2 +$bytes_acme +[0-9]+s +1" && pass "summary: acme 1 on hold" ||
  fail "summary on hold" "$OUT"
expect_line "summary total: 1 on hold" out "-- 3 messages, $((bytes_acme + s3)) bytes held for 2 customers, 1 on hold"
run "$AUTOTURNCTL" -c "$CONF" queue acme
printf '%s\n' "$OUT" | grep -Eq "^$id2! +$s2 +[0-9]+s +<>$" && pass "listing: '!' after the id of a message on hold" ||
  fail "listing: on hold marked" "$OUT"
expect_line "listing total: 1 on hold" out "-- acme: 2 messages, $bytes_acme bytes, 1 on hold"

run "$AUTOTURNCTL" -c "$CONF" queue --json
if [ "$RC" = 0 ] && printf '%s' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
acme, beta = d["customers"]
assert acme["customer"] == "acme" and acme["messages"] == 2 and acme["bytes"] == int(sys.argv[1]) and acme["on_hold"] == 1, acme
assert beta == {"customer": "beta", "messages": 1, "bytes": int(sys.argv[2]), "oldest": beta["oldest"], "on_hold": 0}, beta
assert isinstance(acme["oldest"], int) and acme["oldest"] > 1700000000
assert (d["messages"], d["bytes"], d["on_hold"]) == (3, int(sys.argv[1]) + int(sys.argv[2]), 1), d
' "$bytes_acme" "$s3"; then pass "queue --json: customers, counts, bytes, on_hold"; else fail "queue --json" "$OUT"; fi
run "$AUTOTURNCTL" -c "$CONF" queue --json acme
if [ "$RC" = 0 ] && printf '%s' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
id1, id2, s1, s2 = sys.argv[1:5]
assert d["customer"] == "acme" and d["count"] == 2 and d["bytes"] == int(s1) + int(s2) and d["on_hold"] == 1, d
m1, m2 = d["messages"]
assert m1 == {"id": id1, "size": int(s1), "arrival": m1["arrival"], "on_hold": False, "error": None,
              "queue_id": None, "sender": "sender@example.org", "recipients": ["a@virt.dom", "b@virt.dom"]}, m1
assert m2["id"] == id2 and m2["on_hold"] is True and m2["sender"] == "" and m2["recipients"] == ["c@virt.dom"], m2
assert m1["arrival"] < m2["arrival"]
' "$id1" "$id2" "$s1" "$s2"; then pass "queue acme --json: one object per message, oldest first"; else fail "queue acme --json" "$OUT"; fi

# --- read-only, a malformed file included ---
printf 'garbage\n' >"$WORK/spool/acme/new/1.M1P1Q1.bad"
before=$(snapshot)
run "$AUTOTURNCTL" -c "$CONF" queue acme
printf '%s\n' "$OUT" | grep -qxF "$(printf '%s\n' "$OUT" | awk '$1 == "1.M1P1Q1.bad"' | sed 's/  (.*//')  (malformed spool file $WORK/spool/acme/new/1.M1P1Q1.bad: line 1: missing X-Autoturn-Version)" &&
  printf '%s\n' "$OUT" | grep -Eq '^1\.M1P1Q1\.bad +8 +[0-9wdhms]+  \(' &&
  pass "malformed file reported with the reason" || fail "malformed file reported" "$OUT"
run "$AUTOTURNCTL" -c "$CONF" queue acme --json
printf '%s' "$OUT" | python3 -c '
import json, sys
m = [m for m in json.load(sys.stdin)["messages"] if m["id"] == "1.M1P1Q1.bad"][0]
assert m["error"] == "malformed spool file %s/spool/acme/new/1.M1P1Q1.bad: line 1: missing X-Autoturn-Version" % sys.argv[1], m
assert "sender" not in m, m
' "$WORK" && pass "--json: the malformed file has an error and no envelope" || fail "--json malformed" "$OUT"
run "$AUTOTURNCTL" -c "$CONF" queue
run "$AUTOTURNCTL" -c "$CONF" queue nobody
after=$(snapshot)
[ "$before" = "$after" ] && pass "queue changed nothing in the spool (names, sizes, modes, owners, mtimes)" ||
  fail "queue is read-only" "$(diff <(echo "$before") <(echo "$after"))"
[ -f "$WORK/spool/acme/new/1.M1P1Q1.bad" ] && [ -z "$(ls -A "$WORK/spool/acme/bad")" ] &&
  pass "the malformed file stays in new/, nothing in bad/" || fail "malformed file moved" "$(ls -R "$WORK/spool/acme")"

run "$AUTOTURNCTL" -c "$CONF" queue nobody
expect "customer with nothing held" 0 "-- nobody: 0 messages, 0 bytes"

run "$AUTOTURNCTL" -c "$CONF" queue ../etc
expect "name escaping the spool" 64 "" "autoturnctl: queue: bad customer name '../etc': contains '/'"
run "$AUTOTURNCTL" -c "$CONF" check-config --json
expect "--json only on listing commands" 64 "" "autoturnctl: check-config: bad option '--json'"

finish
