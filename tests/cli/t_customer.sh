# SPDX-License-Identifier: ISC
# t_customer.sh - autoturnctl customer add/remove (edit the customer
# source and compile, in one command) and customers --json:
#   - add appends a block and compiles; the source keeps its mode, owner
#     and every other byte; the table knows the customer;
#   - an add the compiler refuses (a domain another customer claims, a bad
#     value) changes neither the source nor the table (exit 65, the error
#     named with the real source's path and line);
#   - values that would break out of their line are refused (64);
#   - remove takes out the block (its comments inside go, the comment
#     before the next block stays), refuses while mail is held (75) unless
#     --force, and says when there is no such customer (1);
#   - both are logged; customers --json is parsed, not grepped.
. "$(dirname "$0")/lib.sh"
: "${SPOOL_PUT:?set by ctest}"
CONF=$WORK/autoturn.conf
mkdir -p "$WORK/etc" "$WORK/lib" "$WORK/spool"
cat >"$CONF" <<CONF
log { destination = stderr }
spool { directory = "$WORK/spool" }
customers {
    source = "$WORK/etc/customers"
    table = "$WORK/lib/customers.cdb"
}
CONF
ctl() { "$AUTOTURNCTL" -c "$CONF" "$@"; }
cat >"$WORK/etc/customers" <<'SRC'
# the customers of example ISP
customer acme
    domain virt.dom   # the main one
    # the second one:
    domain .virt.dom
    address 192.0.2.10

# beta: a host
customer beta
    domain beta.example
    delivery host 192.0.2.20
SRC
chmod 0640 "$WORK/etc/customers"
chown root:nogroup "$WORK/etc/customers"
run ctl compile
expect "the starting table" 0 "2 customers, 3 domains, 1 networks"
cp "$WORK/etc/customers" "$WORK/orig"
sum() { sha256sum "$1" | cut -d' ' -f1; }

# --- add ---
run ctl customer add gamma --domain gamma.example --domain g2.example --address 2001:db8::/48 \
  --delivery "host [2001:db8::25]:2525" --trigger "connect etrn" --relay yes --max-bytes 1G
expect_line "add gamma" out "customer gamma added; $WORK/lib/customers.cdb: 3 customers, 5 domains, 2 networks"
want=$(cat "$WORK/orig"; printf '\ncustomer gamma\n    domain       gamma.example\n    domain       g2.example\n    address      2001:db8::/48\n    delivery     host [2001:db8::25]:2525\n    trigger      connect etrn\n    relay        yes\n    max-bytes    1G')
[ "$(cat "$WORK/etc/customers")" = "$want" ] && pass "add: the old source, then the new block" ||
  fail "add: source" "$(diff "$WORK/etc/customers" <(echo "$want"))"
[ "$(stat -c '%a %U:%G' "$WORK/etc/customers")" = "640 root:nogroup" ] && pass "add: mode and owner kept" ||
  fail "add: mode and owner" "$(stat -c '%a %U:%G' "$WORK/etc/customers")"
printf '%s\n' "$ERR" | grep -Eqx "autoturnctl\[[0-9]+\]: customer gamma: added to $WORK/etc/customers by the administrator \(autoturnctl customer add, uid $(id -u)\)" &&
  pass "add logged" || fail "add logged" "$ERR"
run ctl lookup domain g2.example
expect_line "the table knows gamma" out "g2.example: customer gamma (rule g2.example)"
[ -z "$(ls "$WORK/etc" "$WORK/lib" | grep -v -e '^customers' -e '^$' -e ':$')" ] &&
  [ "$(ls "$WORK/etc")" = customers ] && [ "$(ls "$WORK/lib")" = customers.cdb ] &&
  pass "add: no temporary file left" || fail "add: leftovers" "$(ls "$WORK/etc" "$WORK/lib")"

run ctl customers --json
printf '%s' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
names = [c["name"] for c in d["customers"]]
assert sorted(names) == ["acme", "beta", "gamma"], names
g = [c for c in d["customers"] if c["name"] == "gamma"][0]
assert g == {"name": "gamma", "domains": ["gamma.example", "g2.example"], "addresses": ["2001:db8::/48"],
             "delivery": "host", "delivery_host": "2001:db8::25", "port": 2525, "tls": "may",
             "triggers": ["connect", "etrn"], "relay": True, "secret": False, "max_messages": 0,
             "max_bytes": 1073741824, "max_age": 0}, g
' && pass "customers --json: every customer, gamma field by field" || fail "customers --json" "$OUT"
run ctl customers acme --json
printf '%s' "$OUT" | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert a["name"] == "acme" and a["domains"] == ["virt.dom", ".virt.dom"] and a["addresses"] == ["192.0.2.10"], a
assert a["delivery"] == "connecting-ip" and a["delivery_host"] is None and a["port"] == 25, a
' && pass "customers NAME --json: one object" || fail "customers acme --json" "$OUT"
run ctl customers nobody --json
expect "customers NAME --json of an unknown name: exit 1, no output" 1 "" "autoturnctl: nobody: no such customer"
[ -z "$OUT" ] && pass "no half JSON" || fail "no half JSON" "$OUT"

# --- refused adds change nothing ---
cp "$WORK/etc/customers" "$WORK/before"; tsum=$(sum "$WORK/lib/customers.cdb")
run ctl customer add delta --domain virt.dom
n=$(($(wc -l <"$WORK/before") + 2))    # errors across customers name the block's line
expect "add of a claimed domain: exit 65" 65 "" "$WORK/etc/customers:$n: domain 'virt.dom' already claimed by customer 'acme' (line 2)"
expect_line "add refused: says nothing changed" err \
  "autoturnctl: customer add delta: 1 error; $WORK/etc/customers and $WORK/lib/customers.cdb not changed"
run ctl customer add delta --domain delta.example --port 99999
expect "add with a bad port: exit 65" 65 "" "bad port '99999'"
run ctl customer add acme --domain other.example
expect "add of an existing name: exit 65" 65 "" "customer 'acme' already defined at line 2"
cmp -s "$WORK/before" "$WORK/etc/customers" && [ "$(sum "$WORK/lib/customers.cdb")" = "$tsum" ] &&
  pass "refused adds: source and table unchanged" || fail "refused adds changed something"
[ "$(ls "$WORK/etc")" = customers ] && [ "$(ls "$WORK/lib")" = customers.cdb ] &&
  pass "refused adds: no temporary file left" || fail "refused: leftovers" "$(ls "$WORK/etc" "$WORK/lib")"
run ctl customer add delta --domain "x.example
customer evil"
expect "a line break in a value: exit 64" 64 "" "autoturnctl: customer add: bad value for --domain: empty, or with a control character or '#'"
run ctl customer add delta --domain "x.example #"
expect "a '#' in a value: exit 64" 64 "" "bad value for --domain"
run ctl customer add delta --colour blue
expect "an unknown key: exit 64" 64 "" "autoturnctl: customer add: unknown key '--colour'"
run ctl customer add delta --domain
expect "a key without value: exit 64" 64 "" "autoturnctl: customer add: --domain needs a value"
run ctl customer add ../x --domain x.example
expect "a bad name: exit 64" 64 "" "autoturnctl: customer add: bad customer name '../x'"
run ctl customer frobnicate x
expect "neither add nor remove: exit 64" 64 "" "autoturnctl: customer: expected add or remove"
cmp -s "$WORK/before" "$WORK/etc/customers" && pass "refused command lines: source unchanged" || fail "source changed"

# --- remove ---
run ctl customer remove acme
expect_line "remove acme" out "customer acme removed; $WORK/lib/customers.cdb: 2 customers, 3 domains, 1 networks"
want=$(sed '2,6d' "$WORK/before")
[ "$(cat "$WORK/etc/customers")" = "$want" ] &&
  pass "remove: the block and its inner comments go, the comment before beta stays" ||
  fail "remove: source" "$(diff "$WORK/etc/customers" <(echo "$want"))"
printf '%s\n' "$ERR" | grep -Eqx "autoturnctl\[[0-9]+\]: customer acme: removed from $WORK/etc/customers by the administrator \(autoturnctl customer remove, uid $(id -u)\)" &&
  pass "remove logged" || fail "remove logged" "$ERR"
run ctl lookup domain virt.dom
expect_line "the table no longer knows virt.dom" out "virt.dom: no customer"
run ctl customer remove acme
expect "remove of an unknown customer: exit 1" 1 "" "autoturnctl: customer remove: no customer acme in $WORK/etc/customers"

printf 'Subject: x\r\n\r\nx\r\n' | "$SPOOL_PUT" "$WORK/spool" beta s@example.org u@beta.example >/dev/null
cp "$WORK/etc/customers" "$WORK/before"
run ctl customer remove beta
expect "remove while mail is held: exit 75" 75 "" \
  "autoturnctl: customer remove: 1 message still held for beta: deliver or delete it first (autoturnctl flush, autoturnctl delete --customer), or add --force"
cmp -s "$WORK/before" "$WORK/etc/customers" && pass "refused remove: source unchanged" || fail "refused remove changed it"
run ctl customer remove beta --force
expect_line "remove --force" out "customer beta removed; $WORK/lib/customers.cdb: 1 customers, 2 domains, 1 networks"
[ "$(ls "$WORK/spool/beta/new" | wc -l)" = 1 ] && pass "remove --force leaves the held mail in the spool" ||
  fail "held mail kept"
run ctl customers
[ "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $1 }')" = gamma ] && pass "customers: only gamma left" || fail "customers" "$OUT"

finish
