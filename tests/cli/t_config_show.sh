# SPDX-License-Identifier: ISC
# t_config_show.sh - autoturnctl config [-n] [NAME...], like postconf and
# postconf -n: every effective setting as "section.key = value" (values
# written as in autoturn.conf: durations and sizes with units, socket
# lists joined by ", "), -n only the settings that differ from the
# built-in defaults, named settings only, unknown names (1), a bad file
# (78).
. "$(dirname "$0")/lib.sh"
ctl() { "$AUTOTURNCTL" "$@"; }

cat >"$WORK/a.conf" <<CONF
log { level = debug }
spool { directory = "$WORK/spool" }
customers { check_interval = 5s }
policyd {
    listen = { "inet:127.0.0.1:10031", "unix:/run/x/p.sock:0660" }
    max_line = 8k
}
flusher {
    max_flushes = 20        # the default, written out: not listed by -n
    bounce_relay = ""
    hello {
        enable = true
        rate_interval = 90s
    }
}
CONF
run ctl -c "$WORK/a.conf" config -n
want="log.level = debug
spool.directory = $WORK/spool
customers.check_interval = 5s
policyd.listen = inet:127.0.0.1:10031, unix:/run/x/p.sock:0660
policyd.max_line = 8K
flusher.bounce_relay =
flusher.hello.enable = true
flusher.hello.rate_interval = 1m30s"
[ "$RC" = 0 ] && [ "$OUT" = "$want" ] && pass "config -n: exactly the settings that differ, in table order" ||
  fail "config -n" "rc $RC" "$(diff <(echo "$OUT") <(echo "$want"))" "$ERR"

run ctl -c "$WORK/a.conf" config
all=$OUT
[ "$RC" = 0 ] && pass "config: exit 0" || fail "config: exit 0" "$ERR"
bad=$(printf '%s\n' "$all" | grep -Evx '[a-z_]+(\.[a-z_]+){1,2} =( .*)?')
[ -z "$bad" ] && pass "config: every line is 'section.key = value'" || fail "config line shape" "$bad"
[ "$(printf '%s\n' "$all" | cut -d' ' -f1 | sort | uniq -d)" = "" ] && pass "config: each setting once" ||
  fail "config: duplicates" "$(printf '%s\n' "$all" | cut -d' ' -f1 | sort | uniq -d)"
for line in "log.destination = syslog" "log.facility = mail" "log.level = debug" \
  "flusher.max_flushes = 20" "flusher.retry_interval = 5m" "flusher.odmr.listen = inet:*:366" \
  "flusher.odmr.enable = false" "flusher.odmr.tls_cert =" "milter.max_recipients = 1000" \
  "policyd.grant_ttl = 3h" "flusher.bounce_method = sendmail" "customers.check_interval = 5s"; do
  printf '%s\n' "$all" | grep -qxF -- "$line" && pass "config: $line" || fail "config: $line" "$all"
done
# -n lists a subset of the full listing, line for line
run ctl -c "$WORK/a.conf" config -n
[ -z "$(comm -23 <(printf '%s\n' "$OUT" | sort) <(printf '%s\n' "$all" | sort))" ] &&
  pass "config -n lines all appear in config" || fail "config -n subset"

run ctl -c "$WORK/a.conf" config flusher.hello.rate_interval log.level
[ "$RC" = 0 ] && [ "$OUT" = "log.level = debug
flusher.hello.rate_interval = 1m30s" ] && pass "config NAME...: those settings" || fail "config NAME" "$OUT"
run ctl -c "$WORK/a.conf" config -n flusher.max_flushes log.level
[ "$RC" = 0 ] && [ "$OUT" = "log.level = debug" ] && pass "config -n NAME...: those that differ" ||
  fail "config -n NAME" "$OUT"
run ctl -c "$WORK/a.conf" config log.level flusher.nosuch
expect "config: an unknown name: exit 1, the known one printed" 1 "log.level = debug" \
  "autoturnctl: config: unknown setting 'flusher.nosuch'"

: >"$WORK/empty.conf"
run ctl -c "$WORK/empty.conf" config -n
[ "$RC" = 0 ] && [ -z "$OUT" ] && pass "config -n of an empty file: nothing" || fail "config -n empty" "$OUT"
printf 'flusher { max_flushes = lots }\n' >"$WORK/bad.conf"
run ctl -c "$WORK/bad.conf" config
expect "config of a bad file: exit 78" 78 "" "$WORK/bad.conf:1: bad number 'lots' for 'max_flushes'"
run ctl -c "$WORK/a.conf" config -x
expect "config -x: exit 64" 64 "" "autoturnctl: config: bad option '-x'"

finish
