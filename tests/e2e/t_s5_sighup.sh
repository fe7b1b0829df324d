#!/bin/bash
# SPDX-License-Identifier: ISC
# t_s5_sighup.sh - DESIGN.md S5 "reload without restart", by signal, on
# the real private Postfix, milter, policy service and flusher of
# tests/e2e/lib.sh (no systemd: tests/package/t_systemd.sh does the same
# through systemctl):
#   - SIGHUP, twice, to each daemon: each logs its reload and keeps running
#     (the milter used to exit 0: libmilter's default), and mail is still
#     held through Postfix and the milter afterwards;
#   - SIGHUP applies the new settings: the milter's max_recipients (452
#     4.5.3 for the 2nd held recipient), the policy service's grant_ttl,
#     the flusher's max_flushes;
#   - SIGHUP makes each daemon look at the customer table at once (the
#     table check interval is 1h here): a customer added meanwhile is known
#     to all three;
#   - a broken autoturn.conf: each daemon refuses the reload, keeps running
#     and keeps serving.
. "$SRCDIR/tests/e2e/lib.sh"
e2e_init
E2E_CHECK_INTERVAL=1h e2e_config
e2e_customers <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
    address 127.0.0.2
    port $PA
    tls none
    trigger etrn
SRC
E2E_RELAY="virt.dom, new.example" e2e_up || { finish; exit 1; }
e2e_sink NEWCO 127.0.0.5 || { finish; exit 1; }

reloads() { grep -Ec ': (reloaded \(|reload refused)' "$1"; }
more_reloads() { [ "$(reloads "$1")" -gt "$2" ]; }
hup() {  # hup NAME PID LOG: SIGHUP, wait for one more "reloaded" or "reload refused" line
  local before
  before=$(reloads "$3")
  kill -HUP "$2"
  e2e_wait 20 more_reloads "$3" "$before"
}
alive() { kill -0 "$1" 2>/dev/null; }
send() {  # send TAG RCPT...
  e2e_msg "$WORK/$1" "$1"
  local tag=$1; shift
  e2e_send 127.0.0.1 "$WORK/$tag" "$@"
}
conf() { sed -i "$1" "$D/autoturn.conf"; }

# --- 1. SIGHUP twice: reloaded, still running ---
for d in MT:milter PD:policyd FL:flusher; do
  var=${d%%:*}_PID name=${d#*:}
  pid=${!var}
  hup "$name" "$pid" "$D/$name.log" && hup "$name" "$pid" "$D/$name.log" &&
    pass "$name: two SIGHUPs, two reloads logged" || fail "$name reload logged" "$(tail -5 "$D/$name.log")"
  sleep 0.5
  alive "$pid" && pass "$name: still running after SIGHUP" || fail "$name: still running after SIGHUP"
done
grep -q "^autoturn-milter\[$MT_PID\]: $D/autoturn.conf: reloaded (listen, user, timeout, spool and table paths need a restart)$" "$D/milter.log" &&
  pass "milter: the reload line" || fail "milter reload line" "$(grep reload "$D/milter.log")"
run send h1 a@virt.dom
expect "after the SIGHUPs the milter still holds mail" 0 "DATA 250 2.0.0 Ok: queued as"
e2e_until 30 1 e2e_held acme || fail "h1 held" "$(e2e_held acme)"

# --- 2. new settings ---
conf '/^milter {/,/^}/ s/^    user = nobody$/&\n    max_recipients = 1/'
conf '/^policyd {/,/^}/ s/^    grant_file = .*/&\n    grant_ttl = 7m/'
conf 's/^    myhostname = flusher.autoturn.test$/&\n    max_flushes = 7/'
run "$AUTOTURNCTL" -c "$D/autoturn.conf" check-config
expect "the changed autoturn.conf is valid" 0
hup milter "$MT_PID" "$D/milter.log"
hup policyd "$PD_PID" "$D/policyd.log"
hup flusher "$FL_PID" "$D/flusher.log"
run send h2 b@virt.dom c@virt.dom
expect_line "milter: max_recipients = 1 after SIGHUP: the 2nd held recipient gets 452" out \
  "RCPT <c@virt.dom> 452 4.5.3 Too many held recipients in this message"
run e2e_ctl grant 127.0.0.7
now=$(date +%s)
run e2e_ctl grants --json
printf '%s' "$OUT" | python3 -c 'import json, sys; g = json.load(sys.stdin)["grants"][0]; d = g["expires"] - int(sys.argv[1]); assert 400 <= d <= 420, d' "$now" &&
  pass "policyd: grant_ttl = 7m after SIGHUP" || fail "policyd grant_ttl" "$OUT"
run e2e_ctl status --json
printf '%s' "$OUT" | python3 -c 'import json, sys; assert json.load(sys.stdin)["max"] == 7' &&
  pass "flusher: max_flushes = 7 after SIGHUP" || fail "flusher max_flushes" "$OUT"

# --- 3. the table, at once ---
cat >>"$D/customers" <<SRC
customer newco
    domain new.example
    address 127.0.0.6
    delivery host 127.0.0.5
    port $PA
    tls none
    trigger etrn
    relay yes
SRC
run e2e_ctl compile
expect "compile with newco" 0 "2 customers, 2 domains, 2 networks"
for d in MT:milter PD:policyd FL:flusher; do
  var=${d%%:*}_PID name=${d#*:}
  hup "$name" "${!var}" "$D/$name.log"
  grep -q "customer table $D/lib/customers.cdb: switched to the new table" "$D/$name.log" &&
    pass "$name: SIGHUP switched to the new table" || fail "$name table switch" "$(tail -3 "$D/$name.log")"
done
run send n1 x@new.example
expect "new.example accepted" 0 "DATA 250 2.0.0 Ok: queued as"
e2e_until 30 1 e2e_held newco && pass "milter: new.example held for newco" || fail "milter knows newco" "$(e2e_held newco)"
run e2e_ctl flush newco --wait
expect "flusher: knows newco, delivers" 0 "delivered 1, deferred 0, bounced 0"
relay6() {
  swaks --server "127.0.0.1:$SMTP" --local-interface 127.0.0.6 --from n@new.example --to x@example.org \
    --quit-after RCPT 2>&1 | awk '/^ *[-~*]> RCPT TO/ { r = 1; next } r && /^<[-~*]* +[0-9][0-9][0-9]/ { print $2; exit }'
}
run relay6
expect_line "policyd: 127.0.0.6 relays (newco's address)" out 250

# --- 4. a broken file: refused, still serving ---
cp "$D/autoturn.conf" "$WORK/good.conf"    # for autoturnctl, which reads it too
conf 's/^    max_flushes = 7$/    max_flushes = lots/'
for d in MT:milter PD:policyd FL:flusher; do
  var=${d%%:*}_PID name=${d#*:}
  hup "$name" "${!var}" "$D/$name.log"
  grep -q "error: $D/autoturn.conf: reload refused; keeping the running configuration" "$D/$name.log" &&
    pass "$name: broken file, reload refused" || fail "$name refused" "$(tail -3 "$D/$name.log")"
  alive "${!var}" && pass "$name: still running" || fail "$name: still running"
done
run send h3 d@virt.dom
expect "milter still holds mail" 0 "DATA 250 2.0.0 Ok: queued as"
run "$AUTOTURNCTL" -c "$WORK/good.conf" status --json
printf '%s' "$OUT" | python3 -c 'import json, sys; assert json.load(sys.stdin)["max"] == 7' &&
  pass "flusher: still max_flushes = 7" || fail "flusher kept its settings" "$OUT"

e2e_check
finish
