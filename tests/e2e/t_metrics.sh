#!/bin/bash
# SPDX-License-Identifier: ISC
# t_metrics.sh - Prometheus metrics end to end (docs/METRICS.md): a real
# Prometheus (Debian's prometheus, run privately on 127.0.0.1 with a 1 s
# scrape interval and conf/prometheus-rules.yml loaded) scrapes the
# metrics { listen } endpoints of the real autoturn-milter,
# autoturn-policyd and autoturn-flusher behind a real private Postfix
# (tests/e2e/lib.sh), and PromQL queries over its HTTP API return what
# happened: mail held (milter verdicts, the spool totals, the oldest
# arrival), mail passed, a stranger's ETRN refused (defer), the customer's
# ETRN flush (deliveries sent, a flush by reason etrn, nothing held after),
# a manual flush whose recipient is deferred (a failed flush), one that is
# bounced, one held past its max-age (expired by the sweep), a spool that
# cannot be written (tempfailed, and the AutoturnMilterTempfailing alert
# firing), a policy service that stops (up == 0, AutoturnDaemonDown
# pending). Every wait polls with a deadline. Also: each endpoint passes
# promtool check metrics, answers 404/405 as HTTP wants, runs every
# thread as the unprivileged user, keeps serving mail while a scraper
# holds idle connections, and a second daemon on a taken metrics port
# stops with a clear message.
. "$SRCDIR/tests/e2e/lib.sh"
command -v prometheus >/dev/null && command -v promtool >/dev/null ||
  { fail "prometheus and promtool installed (scripts/deps)"; finish; exit 1; }
e2e_init
MM=$(free_port) MP=$(free_port) MF=$(free_port) PROM=$(free_port)
PROM_PID=
prom_stop() {
  [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
  PROM_PID=
}
trap 'prom_stop; e2e_down' EXIT
E2E_MILTER="metrics { listen = \"inet:127.0.0.1:$MM\" }"
E2E_POLICYD="metrics { listen = \"inet:127.0.0.1:$MP\" }"
E2E_FLUSHER="sweep_interval = 1s
    metrics { listen = \"inet:127.0.0.1:$MF\" }"
e2e_config
e2e_customers <<SRC || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
    address 127.0.0.2
    delivery connecting-ip
    port $PA
    tls none
    trigger etrn
customer beta
    domain beta.example
    delivery host 127.0.0.3
    port $PA
    tls none
    trigger etrn
customer delta
    domain delta.example
    delivery host 127.0.0.5
    port $PA
    tls none
customer gamma
    domain gamma.example
    delivery host 127.0.0.4
    port $PA
    tls none
    max-age 1s
SRC
e2e_up || { finish; exit 1; }
e2e_sink ACME 127.0.0.2 || { finish; exit 1; }
e2e_sink BETA 127.0.0.3 -r rcpt || { finish; exit 1; }   # 450 at RCPT: deferred
e2e_sink DELTA 127.0.0.5 -f . || { finish; exit 1; }      # 5xx after the dot: bounced

# --- Prometheus, private: its own config, data directory and port ---
mkdir -p "$D/prom/data"
cat >"$D/prom/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - "$SRCDIR/conf/prometheus-rules.yml"
scrape_configs:
  - job_name: autoturn-milter
    static_configs: [ { targets: [ "127.0.0.1:$MM" ] } ]
  - job_name: autoturn-policyd
    static_configs: [ { targets: [ "127.0.0.1:$MP" ] } ]
  - job_name: autoturn-flusher
    static_configs: [ { targets: [ "127.0.0.1:$MF" ] } ]
YML
run promtool check config "$D/prom/prometheus.yml"
expect "promtool check config (scrape jobs and the shipped rules)" 0 "SUCCESS"
prometheus --config.file="$D/prom/prometheus.yml" --storage.tsdb.path="$D/prom/data" \
  --web.listen-address="127.0.0.1:$PROM" >"$D/prometheus.log" 2>&1 &
PROM_PID=$!

PC=$SRCDIR/tests/e2e/prom_check.py
T=$'\t'
# expect_pq - stdin: "WANT<TAB>EXPR[<TAB>LABEL]" lines; each PromQL query
# is polled until its value is WANT (60 s each), all in one python3 process
expect_pq() {
  local line
  while IFS= read -r line; do
    case $line in
      "ok - "*) pass "${line#ok - }" ;;
      "not ok - "*) line=${line#not ok - }; fail "${line%%"$T"*}" "${line#*"$T"}" ;;
      *) fail "prom_check.py expect" "$line" ;;
    esac
  done < <(python3 "$PC" expect "$PROM" 2>&1)
}
hold() {   # TAG RCPT...
  local tag=$1; shift
  e2e_msg "$WORK/$tag" "$tag"
  run e2e_send 127.0.0.1 "$WORK/$tag" "$@"
}
etrn() {   # SRC DOMAIN - "CODE TEXT"
  python3 - "$SMTP" "$1" "$2" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=(sys.argv[2], 0), timeout=30)
s.ehlo("customer.test")
code, text = s.docmd("ETRN", sys.argv[3])
print(code, text.decode())
s.quit()
PY
}
spool_bytes() {
  find "$D/spool/$1/new" "$D/spool/$1/cur" -type f -printf '%s\n' 2>/dev/null |
    awk '{ s += $1 } END { print s + 0 }'
}
oldest_arrival() {
  ls "$D/spool/$1/new" "$D/spool/$1/cur" 2>/dev/null |
    sed -n 's/^\([0-9][0-9]*\)\..*/\1/p' | sort -n | head -n 1
}
acme_sunk() { [ "$(e2e_count "$D/sink-ACME")" = "$1" ]; }

# --- 1. the endpoints ---
if python3 "$PC" ready "$PROM" 60; then pass "Prometheus is ready"
else fail "Prometheus is ready" "$(tail -20 "$D/prometheus.log")"; finish; exit 1; fi
CT="text/plain; charset=utf-8"
for p in "milter $MM" "policyd $MP" "flusher $MF"; do
  set -- $p
  run python3 "$PC" http "$2" "$WORK/metrics-$1"
  expect "$1: HTTP requests made" 0
  n=$(wc -l <"$WORK/metrics-$1")
  expect_line "$1: GET /metrics: 200, text format 0.0.4" out \
    "GET /metrics 200 text/plain; version=0.0.4; charset=utf-8 None $n"
  expect_line "$1: HEAD /metrics: 200, no body" out \
    "HEAD /metrics 200 text/plain; version=0.0.4; charset=utf-8 None 0"
  expect_line "$1: POST /metrics: 405 with Allow" out "POST /metrics 405 $CT GET, HEAD 1"
  expect_line "$1: GET /nope: 404" out "GET /nope 404 $CT None 1"
  run promtool check metrics <"$WORK/metrics-$1"
  expect "$1: promtool check metrics finds nothing to lint" 0
  grep -q "^autoturn_build_info{version=\"[0-9.]*\"} 1$" "$WORK/metrics-$1" &&
    pass "$1: autoturn_build_info" || fail "$1: autoturn_build_info" "$(head "$WORK/metrics-$1")"
done
grep -q '^autoturn_milter_messages_total{result="held"} 0$' "$WORK/metrics-milter" &&
  ! grep -q '^autoturn_deliveries_total' "$WORK/metrics-milter" &&
  grep -q '^autoturn_deliveries_total{outcome="sent"} 0$' "$WORK/metrics-flusher" &&
  grep -q '^autoturn_policyd_grants 0$' "$WORK/metrics-policyd" &&
  pass "each daemon exposes its own families" ||
  fail "own families" "$(grep -h '^autoturn_[a-z]*_' "$WORK"/metrics-* | head)"
for pid in "$MT_PID" "$PD_PID" "$FL_PID"; do
  uids=$(awk '/^Uid:/ { print $2 }' /proc/"$pid"/task/*/status | sort -u)
  n=$(ls /proc/"$pid"/task | wc -l)
  [ "$uids" = "$(id -u nobody)" ] && [ "$n" -ge 2 ] &&
    pass "pid $pid: all $n threads (HTTP thread included) run as nobody" ||
    fail "threads of $pid run as nobody" "uids: $uids, threads: $n"
done
expect_pq <<Q
3${T}sum(up{job=~"autoturn-.*"})${T}Prometheus scrapes the three daemons (up == 1)
3${T}sum(autoturn_customer_table_last_load_success)${T}every daemon loaded the customer table
3${T}count(autoturn_customer_table_customers == 4)${T}every daemon sees 4 customers
$(stat -c %Y "$D/lib/customers.cdb")${T}max(autoturn_customer_table_generation)${T}table generation: the table file's modification time
0${T}max(autoturn_customer_table_generation) - min(autoturn_customer_table_generation)${T}all three daemons use the same table generation
Q
run python3 "$PC" rules "$PROM"
expect_line "the 6 shipped rules are loaded and evaluate without error" out "6 ok"

# --- 2. hold three messages, pass one; a scraper holds idle connections meanwhile ---
python3 - "$MM" "$MP" "$MF" >"$WORK/idle.out" 2>&1 <<'PY' &
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(p))) for p in sys.argv[1:] for _ in range(2)]
print("idle", len(socks), flush=True)
time.sleep(8)
PY
IDLE=$!
e2e_wait 30 grep -q idle "$WORK/idle.out" || fail "idle scraper connections" "$(cat "$WORK/idle.out")"
for t in m1 m2 m3; do
  hold "$t" a@virt.dom
  expect "$t for a@virt.dom accepted while scrapers idle" 0 "DATA 250 2.0.0 Ok: queued as"
done
hold p1 x@example.net
expect "p1 for x@example.net accepted" 0 "DATA 250 2.0.0 Ok: queued as"
e2e_until 60 3 e2e_held acme && pass "3 messages held for acme" || fail "held 3" "$(e2e_ctl queue)"
wait "$IDLE"
expect_pq <<Q
3${T}autoturn_milter_messages_total{result="held"}
1${T}autoturn_milter_messages_total{result="passed"}
0${T}autoturn_milter_messages_total{result="tempfailed"}
3${T}autoturn_milter_hold_duration_seconds_count
3${T}autoturn_milter_hold_duration_seconds_bucket{le="+Inf"}
1${T}autoturn_milter_hold_duration_seconds_sum > bool 0${T}the hold latency sum is positive
3${T}autoturn_held_messages${T}autoturn_held_messages = 3 (the sweep's spool scan)
$(spool_bytes acme)${T}autoturn_held_bytes${T}autoturn_held_bytes = the spool files' bytes
$(oldest_arrival acme)${T}autoturn_held_oldest_timestamp_seconds${T}autoturn_held_oldest_timestamp_seconds = the oldest spool file's arrival
1${T}time() - autoturn_held_oldest_timestamp_seconds < bool 600${T}held mail's age is minutes, not epochs
1${T}time() - autoturn_held_scan_timestamp_seconds < bool 60${T}the spool scan is recent
1${T}sum(autoturn_policyd_requests_total) > bool 0${T}policy requests counted
0${T}sum(autoturn_policyd_requests_total) - sum(autoturn_policyd_request_duration_seconds_count)${T}every policy request has its latency observed
0${T}sum(autoturn_policyd_requests_total{decision=~"defer|reject"})${T}no request refused yet
Q

# --- 3. a stranger's ETRN is refused; acme's own ETRN flushes; nothing is held after ---
run etrn 127.0.0.9 virt.dom
expect_line "ETRN virt.dom from a stranger: 450" out \
  "450 4.7.1 <virt.dom>: Etrn command rejected: ETRN for virt.dom not allowed from this address"
expect_pq <<Q
1${T}autoturn_policyd_requests_total{decision="defer"}${T}the refusal counts as decision=defer
Q
run etrn 127.0.0.2 virt.dom
expect_line "ETRN virt.dom from acme's address: 250" out "250 Queuing started"
e2e_wait 60 acme_sunk 3 && pass "acme's server got the 3 messages" || fail "acme got 3" "$(ls "$D/sink-ACME")"
expect_pq <<Q
3${T}autoturn_deliveries_total{outcome="sent"}
1${T}autoturn_flushes_total{reason="etrn"}
0${T}autoturn_flush_failures_total{reason="etrn"}
1${T}autoturn_flush_duration_seconds_count{reason="etrn"}
1${T}autoturn_flush_duration_seconds_bucket{reason="etrn",le="+Inf"}
0${T}sum(autoturn_flushes_total{reason!="etrn"})${T}no flush for any other reason
0${T}autoturn_held_messages${T}nothing held after the flush
0${T}autoturn_flushes_running${T}no flush running
Q

# --- 4. a manual flush whose recipient gets 450: deferred, a failed flush ---
hold b1 z@beta.example
expect "b1 for z@beta.example accepted" 0 "DATA 250 2.0.0 Ok: queued as"
e2e_until 60 1 e2e_held beta || fail "b1 held" "$(e2e_ctl queue)"
run e2e_ctl flush beta --wait
[[ "$OUT$ERR" == *"deferred 1"* ]] && pass "autoturnctl flush beta: deferred 1" || fail "flush beta" "$OUT" "$ERR"
expect_pq <<Q
1${T}autoturn_deliveries_total{outcome="deferred"}
1${T}autoturn_flushes_total{reason="manual"}
1${T}autoturn_flush_failures_total{reason="manual"}${T}the manual flush counts as failed
1${T}autoturn_held_messages${T}b1 still held
Q

# --- 4b. a 5xx from the customer's server: bounced; held past max-age: expired ---
hold d1 w@delta.example
expect "d1 for w@delta.example accepted" 0 "DATA 250 2.0.0 Ok: queued as"
e2e_until 60 1 e2e_held delta || fail "d1 held" "$(e2e_ctl queue)"
run e2e_ctl flush delta --wait
[[ "$OUT$ERR" == *"bounced 1"* ]] && pass "autoturnctl flush delta: bounced 1" || fail "flush delta" "$OUT" "$ERR"
hold g1 v@gamma.example
expect "g1 for v@gamma.example accepted" 0 "DATA 250 2.0.0 Ok: queued as"
e2e_wait 60 grep -q ": to=<v@gamma.example>\(, orig_queue_id=[^,]*\)\?, customer=gamma, relay=none, .*status=bounced (held too long" \
  "$D/flusher.log" && pass "the sweep returned g1 (max-age 1s)" || fail "g1 expired" "$(grep gamma "$D/flusher.log")"
expect_pq <<Q
1${T}autoturn_deliveries_total{outcome="bounced"}
1${T}autoturn_deliveries_total{outcome="expired"}
2${T}autoturn_flushes_total{reason="manual"}
1${T}autoturn_flush_failures_total{reason="manual"}${T}the bounce is no failed flush
1${T}autoturn_held_messages${T}only b1 held: neither the bounced nor the expired message counts
Q

# --- 5. the spool cannot be written: tempfail, and the alert fires ---
chmod 0500 "$D/spool/acme/tmp"
hold t1 a@virt.dom
expect "t1 for a@virt.dom: 451 while the spool is unwritable" 0 "DATA 451 4.3.0"
chmod 0700 "$D/spool/acme/tmp"
expect_pq <<Q
1${T}autoturn_milter_messages_total{result="tempfailed"}
1${T}count(ALERTS{alertname="AutoturnMilterTempfailing",alertstate="firing"})${T}alert AutoturnMilterTempfailing fires
Q

# --- 6. a second policy service on the taken metrics port stops, saying why ---
run "$POLICYD" -f -c "$D/autoturn.conf"
expect "a second autoturn-policyd exits 1" 1 "" \
  "fatal: metrics: inet:127.0.0.1:$MP: bind: Address already in use"

# --- 7. the policy service stops: up == 0, the daemon-down alert is pending ---
pd_stop
expect_pq <<Q
0${T}up{job="autoturn-policyd"}${T}up{job="autoturn-policyd"} = 0 once it stopped
1${T}count(ALERTS{alertname="AutoturnDaemonDown",job="autoturn-policyd",alertstate="pending"})${T}alert AutoturnDaemonDown is pending for autoturn-policyd
2${T}sum(up{job=~"autoturn-.*"})${T}the milter and the flusher are still up
Q

e2e_check
finish
