# SPDX-License-Identifier: ISC
# t_table.sh - autoturnctl compile / customers / lookup end to end:
# exact messages and exit codes, atomic replacement, damaged tables.
. "$(dirname "$0")/lib.sh"
D=$SRCDIR/tests/data/customers
CONF=$WORK/autoturn.conf
cat >"$CONF" <<CONF
spool { directory = "$WORK/spool" }
customers {
  source = "$SRCDIR/conf/customers.demo"
  table = "$WORK/customers.cdb"
}
CONF

# --- compile ---
run "$AUTOTURNCTL" compile "$SRCDIR/conf/customers.example" "$WORK/empty.cdb"
expect "shipped example (all commented) compiles to an empty table" 0 \
  "$SRCDIR/conf/customers.example -> $WORK/empty.cdb: 0 customers, 0 domains, 0 networks"

run "$AUTOTURNCTL" -c "$CONF" compile
expect "compile with paths from the config" 0 \
  "$SRCDIR/conf/customers.demo -> $WORK/customers.cdb: 2 customers, 3 domains, 3 networks"

run "$AUTOTURNCTL" compile "$D/full" "$WORK/full.cdb"
expect "every key once" 0 "3 customers"

cp "$WORK/customers.cdb" "$WORK/before.cdb"
cat >"$WORK/bad.src" <<'SRC'
customer acme
    domain virt.dom
customer broken
    address 1.2.3.4/33 ::g
    bogus 1
customer ../x
    domain x.example
customer other
    domain virt.dom
SRC
printf 'customer a\n    domain a.example\0\n' >"$WORK/nul.src"
run "$AUTOTURNCTL" compile "$WORK/bad.src" "$WORK/customers.cdb"
expect "a source with errors exits 65" 65 "" "autoturnctl: $WORK/bad.src: 6 errors; $WORK/customers.cdb not changed"
expect_line "bad CIDR" err "$WORK/bad.src:4: bad address '1.2.3.4/33': prefix length out of range"
expect_line "bad IPv6" err "$WORK/bad.src:4: bad address '::g': not an IPv4 or IPv6 address"
expect_line "name escaping the spool" err "$WORK/bad.src:6: bad customer name '../x': contains '/'"
expect_line "unknown key" err "$WORK/bad.src:5: unknown key 'bogus'"
expect_line "domain claimed twice" err "$WORK/bad.src:8: domain 'virt.dom' already claimed by customer 'acme' (line 1)"
if cmp -s "$WORK/before.cdb" "$WORK/customers.cdb"; then pass "table unchanged after a bad source"; else fail "table unchanged after a bad source"; fi
leftovers=$(find "$WORK" -maxdepth 1 -name '*.tmp*' -o -maxdepth 1 -name '.customers*' | wc -l)
[ "$leftovers" = 0 ] && pass "no temp file left behind" || fail "no temp file left behind" "$(ls -a "$WORK")"

run "$AUTOTURNCTL" compile "$WORK/nul.src" "$WORK/x.cdb"
expect_line "NUL byte" err "$WORK/nul.src:2: NUL byte in line"

head -c 5000 /dev/zero | tr '\0' a >"$WORK/long.src"
run "$AUTOTURNCTL" compile "$WORK/long.src" "$WORK/x.cdb"
expect_line "over-long line" err "$WORK/long.src:1: line too long (max 4096 bytes)"

printf 'customer\n' >"$WORK/noname.src"
run "$AUTOTURNCTL" compile "$WORK/noname.src" "$WORK/x.cdb"
expect_line "empty customer name" err "$WORK/noname.src:1: 'customer' needs one value: the customer name"

printf 'customer a/b\n    domain a.example\n' >"$WORK/slash.src"
run "$AUTOTURNCTL" compile "$WORK/slash.src" "$WORK/x.cdb"
expect_line "customer name a/b" err "$WORK/slash.src:1: bad customer name 'a/b': contains '/'"

# foot-guns: the world as a relay or a public suffix held is an error, a
# very wide relay network a warning (the table is still written)
printf 'customer open\n    domain open.example\n    address 0.0.0.0/0\n    relay yes\ncustomer tld\n    domain .com\n' >"$WORK/world.src"
run "$AUTOTURNCTL" compile "$WORK/world.src" "$WORK/x.cdb"
expect "relay for 0.0.0.0/0 and a public suffix: refused" 65 "" "autoturnctl: $WORK/world.src: 2 errors; $WORK/x.cdb not changed"
expect_line "0.0.0.0/0 with relay" err "$WORK/world.src:3: relay yes with network 0.0.0.0/0: customer 'open' would let the whole Internet relay"
expect_line "public suffix" err "$WORK/world.src:6: domain '.com' is a public suffix: customer 'tld' would hold mail for every domain under it"
printf 'customer wide\n    domain wide.example\n    address 10.0.0.0/7\n    relay yes\n' >"$WORK/wide.src"
run "$AUTOTURNCTL" compile "$WORK/wide.src" "$WORK/wide.cdb"
expect "relay for a network wider than /8: compiled, with a warning" 0 \
  "$WORK/wide.src -> $WORK/wide.cdb: 1 customers, 1 domains, 1 networks" \
  "$WORK/wide.src:3: warning: relay yes with network 10.0.0.0/7, wider than /8: every address in it may relay through us as customer 'wide'"

run "$AUTOTURNCTL" compile "$WORK/missing.src" "$WORK/x.cdb"
expect "missing source" 66 "" "autoturnctl: $WORK/missing.src: cannot open: No such file or directory"

run "$AUTOTURNCTL" compile "$SRCDIR/conf/customers.demo" "$WORK/nodir/x.cdb"
expect "destination directory missing" 73 "" "autoturnctl: $WORK/nodir/x.cdb: cannot create: No such file or directory"

# --- customers ---
run "$AUTOTURNCTL" -c "$CONF" customers
expect "list customers" 0 "acme"
[[ "$OUT" == *beta* ]] && pass "list shows beta" || fail "list shows beta" "$OUT"

run "$AUTOTURNCTL" -c "$CONF" customers beta
expect "show one customer in source syntax" 0 "    delivery     host 127.0.0.3"
expect_line "show: port on its own line" out "    port         2525"
run "$AUTOTURNCTL" compile "$D/full" "$WORK/full.cdb"
sed "s|$WORK/customers.cdb|$WORK/full.cdb|" "$CONF" >"$WORK/full.conf"
run "$AUTOTURNCTL" -c "$WORK/full.conf" customers beta
expect_line "show: IPv6 host in brackets" out "    delivery     host [2001:db8::25]"

run "$AUTOTURNCTL" -c "$CONF" customers nobody
expect "show an unknown customer" 1 "" "autoturnctl: nobody: no such customer"

# --- lookup ---
run "$AUTOTURNCTL" -c "$CONF" lookup domain virt.dom
expect "exact domain" 0 "virt.dom: customer acme (rule virt.dom)"
run "$AUTOTURNCTL" -c "$CONF" lookup domain Mail.VIRT.dom.
expect "subdomain, any case, trailing dot" 0 "Mail.VIRT.dom.: customer acme (rule .virt.dom)"
run "$AUTOTURNCTL" -c "$CONF" lookup domain example.org
expect "unknown domain" 1 "example.org: no customer"
run "$AUTOTURNCTL" -c "$CONF" lookup address 127.0.0.2
expect "registered address" 0 "127.0.0.2: customer acme (rule 127.0.0.2)"
run "$AUTOTURNCTL" -c "$CONF" lookup address 198.51.100.70
expect "longest prefix wins" 0 "198.51.100.70: customer beta (rule 198.51.100.64/26)"
run "$AUTOTURNCTL" -c "$CONF" lookup address 198.51.100.7
expect "shorter prefix" 0 "198.51.100.7: customer acme (rule 198.51.100.0/24)"
run "$AUTOTURNCTL" -c "$CONF" lookup address ::ffff:127.0.0.2
expect "v4-mapped IPv6 matches the IPv4 entry" 0 "customer acme"
run "$AUTOTURNCTL" -c "$CONF" lookup address 203.0.113.9
expect "unknown address" 1 "203.0.113.9: no customer"
run "$AUTOTURNCTL" -c "$CONF" lookup address 1.2.3.4/33
expect "bad address to look up" 64 "" "autoturnctl: bad address '1.2.3.4/33': "

# --- damaged tables: a lookup error, never "not found" ---
head -c 1000 "$WORK/customers.cdb" >"$WORK/trunc.cdb"
sed "s|$WORK/customers.cdb|$WORK/trunc.cdb|" "$CONF" >"$WORK/trunc.conf"
run "$AUTOTURNCTL" -c "$WORK/trunc.conf" lookup domain virt.dom
expect "truncated table" 75 "" "autoturnctl: customer table $WORK/trunc.cdb: corrupt (not a cdb file, or truncated)"

head -c 4096 /dev/urandom >"$WORK/garbage.cdb"
sed "s|$WORK/customers.cdb|$WORK/garbage.cdb|" "$CONF" >"$WORK/garbage.conf"
run "$AUTOTURNCTL" -c "$WORK/garbage.conf" lookup address 127.0.0.2
[ "$RC" = 75 ] && pass "garbage table is an error (75)" || fail "garbage table" "rc=$RC $OUT $ERR"

sed "s|$WORK/customers.cdb|$WORK/none.cdb|" "$CONF" >"$WORK/none.conf"
run "$AUTOTURNCTL" -c "$WORK/none.conf" customers
expect "missing table" 75 "" "autoturnctl: customer table $WORK/none.cdb: No such file or directory"

finish
