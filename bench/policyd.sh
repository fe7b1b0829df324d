#!/bin/bash
# SPDX-License-Identifier: ISC
# policyd.sh - how fast is autoturn-policyd? One run, everything on
# loopback: autoturn-policyd twice (1,000,000 customers with 100,000 live
# grants, and 1,000 customers with 100 grants), bench/policyd_limit (a
# minimal epoll server answering action=DUNNO: what the kernel, loopback
# and one event loop allow) and postgrey (Debian package, installed if
# missing), each driven by bench/policyd_load at c = 1, 10, 50 persistent
# connections (RCPT requests, Postfix attributes), ROUNDS rounds with the
# servers' order rotated, medians. Prints req/s, p50, p99 and the
# server's CPU time per request (user + system of its process, from /proc,
# over the measured run: steadier than req/s when the load generator and
# the server share two cores with other load), and the ratios.
# Targets at c = 50: server CPU per request <= 1.15 x the limit server's,
# req/s >= 0.85 x the limit server's, req/s with 1,000,000 customers and
# 100,000 grants >= 0.95 x with 1,000 customers, p99 < 1 ms.
#
# Usage: bench/policyd.sh            (as root: postgrey and the daemon run as nobody)
#   BUILDDIR   default build/release (RelWithDebInfo; targets built if missing)
#   DURATION   seconds per measurement (default 5; plus 0.5 s warm-up)
#   CUSTOMERS, GRANTS  default 1000000, 100000 (the large table)
#   SMALL_CUSTOMERS, SMALL_GRANTS  default 1000, 100 (the small one)
#   CONNS      default "1 10 50"
#   ROUNDS     default 3
#   BASELINE   another build's autoturn-policyd, run on the large table in
#              the same rounds (server "baseline"; no RATIO line): to
#              compare two builds under the same load
#   KEEP=1     keep the work directory (logs, data) and print its name
#   QUICK=1    DURATION 1, CUSTOMERS 10000, GRANTS 1000, CONNS "1 50",
#              ROUNDS 1 unless set: checks the harness, measures nothing
#              worth keeping
# Ends with RATIO lines (bench/ratio.sh, format in bench/all); the targets
# apply at c = 50, the other c get lines without a target.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILDDIR:-$root/build/release}
if [ "${QUICK:-0}" = 1 ]; then
  duration=${DURATION:-1}
  customers=${CUSTOMERS:-10000}
  grants=${GRANTS:-1000}
  conns=${CONNS:-1 50}
  rounds=${ROUNDS:-1}
else
  duration=${DURATION:-5}
  customers=${CUSTOMERS:-1000000}
  grants=${GRANTS:-100000}
  conns=${CONNS:-1 10 50}
  rounds=${ROUNDS:-3}
fi
small_customers=${SMALL_CUSTOMERS:-1000}
small_grants=${SMALL_GRANTS:-100}
. "$here/ratio.sh"
load=$build/policyd/bench_policyd_load
limit=$build/policyd/bench_policyd_limit
policyd=$build/policyd/autoturn-policyd
ctl=$build/ctl/autoturnctl

say() { echo "policyd.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (postgrey and autoturn-policyd switch to nobody)"

# --- build ---
if [ ! -x "$load" ] || [ ! -x "$limit" ] || [ ! -x "$policyd" ] || [ ! -x "$ctl" ]; then
  say "building into $build"
  [ -f "$build/CMakeCache.txt" ] ||
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j2 --target bench_policyd_load bench_policyd_limit \
    autoturn-policyd autoturnctl >/dev/null
fi

# --- postgrey ---
if ! command -v postgrey >/dev/null; then
  say "installing postgrey"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends postgrey >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends postgrey >/dev/null; } ||
    die "cannot install postgrey"
fi

# --- processes we start, and only those, are stopped at exit ---
work=$(mktemp -d /tmp/bench_policyd.XXXXXX)
pids=""
cleanup() {
  local p
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$work"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  local i
  for i in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# --- data: a directory per table size ---
# gen_data DIR CUSTOMERS GRANTS
gen_data() {
  mkdir -p "$1"
  "$load" gen "$2" "$3" "$1"
  t0=$(date +%s.%N)
  "$ctl" compile "$1/customers" "$1/customers.cdb" >/dev/null
  t1=$(date +%s.%N)
  say "$2 customers compiled in $(echo "$t1 - $t0" | bc) s"
  chmod 755 "$1"
  chmod 644 "$1/customers" "$1/customers.cdb"
  mv "$1/grants" "$1/grants.snapshot"
  mkdir "$1/grants"
  mv "$1/grants.snapshot" "$1/grants/grants"
  chown -R nobody:nogroup "$1/grants"
}
say "generating $customers customers and $grants grants, and $small_customers and $small_grants"
gen_data "$work/big" "$customers" "$grants"
gen_data "$work/small" "$small_customers" "$small_grants"
mkdir "$work/postgrey"
chown nobody:nogroup "$work/postgrey"

# --- autoturn-policyd, one per table ---
# start_policyd NAME DIR GRANTS [BINARY] - sets port_NAME and pid_NAME
start_policyd() {
  local name=$1 dir=$2 port i bin=${4:-$policyd}
  port=$(free_port)
  cat >"$dir/autoturn.conf" <<CONF
log {
    destination = stderr
    level = info
}
customers {
    source = "$dir/customers"
    table = "$dir/customers.cdb"
}
policyd {
    # the limit server logs nothing either (the decision lines are a
    # write each: measured apart, see docs/PERFORMANCE.md)
    log_decisions = false
    listen = { "inet:127.0.0.1:$port" }
    control = "unix:$dir/control.sock:0600"
    user = nobody
    group = nogroup
    grant_file = "$dir/grants/grants"
}
flusher {
    control = "unix:$dir/flusher.sock:0660"
}
CONF
  "$bin" -f -c "$dir/autoturn.conf" 2>"$dir/policyd.log" &
  eval "pid_$name=\$!; port_$name=\$port"
  pids="$pids $!"
  wait_port "$port" || die "autoturn-policyd ($name) did not start: $(tail -3 "$dir/policyd.log")"
  for i in $(seq 1 600); do   # the sockets are bound before the grants are loaded
    grep -q "started:" "$dir/policyd.log" && break
    sleep 0.1
  done
  grep -q "grants: $3 live grants loaded" "$dir/policyd.log" ||
    die "autoturn-policyd ($name) did not load $3 grants: $(tail -3 "$dir/policyd.log")"
}
start_policyd autoturn "$work/big" "$grants"
start_policyd small "$work/small" "$small_grants"
if [ -n "${BASELINE:-}" ]; then
  mkdir "$work/base"
  cp -a "$work/big/customers" "$work/big/customers.cdb" "$work/big/grants" "$work/base/"
  chmod 755 "$work/base"
  start_policyd baseline "$work/base" "$grants" "$BASELINE"
fi

# --- the limit ---
port_limit=$(free_port)
"$limit" "127.0.0.1:$port_limit" 2>"$work/limit.log" &
pid_limit=$!
pids="$pids $!"
wait_port "$port_limit" || die "policyd_limit did not start: $(cat "$work/limit.log")"

# --- postgrey: private db, no whitelists, 1 s delay (nothing waits anyway) ---
port_postgrey=$(free_port)
: >"$work/postgrey/whitelist_clients"
: >"$work/postgrey/whitelist_recipients"
postgrey --inet="127.0.0.1:$port_postgrey" --dbdir="$work/postgrey" --user=nobody --group=nogroup \
  --delay=1 --whitelist-clients="$work/postgrey/whitelist_clients" \
  --whitelist-recipients="$work/postgrey/whitelist_recipients" \
  --hostname=bench.invalid 2>"$work/postgrey.log" &
pid_postgrey=$!
pids="$pids $!"
wait_port "$port_postgrey" || die "postgrey did not start: $(tail -3 "$work/postgrey.log")"

# CPU ticks (user + system, all threads) of a server process so far
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# --- runs: rounds, the servers' order rotated, medians ---
say "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
: >"$work/results"
order="limit autoturn small postgrey${BASELINE:+ baseline}"
for round in $(seq 1 "$rounds"); do
  for c in $conns; do
    for s in $order; do
      eval "spid=\$pid_$s; port=\$port_$s"
      if [ "$s" = small ]; then C=$small_customers G=$small_grants; else C=$customers G=$grants; fi
      t0=$(cpu_ticks "$spid")
      line=$("$load" run -c "$c" -d "$duration" -C "$C" -G "$G" \
        "inet:127.0.0.1:$port" 2>"$work/load.$s.$c.log") ||
        die "$s at c=$c: $(cat "$work/load.$s.$c.log")"
      t1=$(cpu_ticks "$spid")
      # microseconds of server CPU per request; the ticks include the warm-up
      # (0.5 s), so the requests do too: req/s x (duration + 0.5)
      us=$(echo "$line" | awk -v t="$((t1 - t0))" -v hz="$hz" -v d="$duration" \
        '{ n = $4 * (d + 0.5); printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0) }')
      echo "$s $line $us" >>"$work/results"
      say "round $round, $s c=$c: $line, server CPU $us us/request ($(sed -n 's/^policyd_load: action //p' "$work/load.$s.$c.log" | paste -sd, -))"
    done
    order="${order#* } ${order%% *}"
  done
done
say "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

# medians per server and c: "server c rps p50 p99 us"
awk '{ k = $1 " " $2; n[k]++; rps[k, n[k]] = $5; p50[k, n[k]] = $6; p99[k, n[k]] = $7
       us[k, n[k]] = $8 }
  function med(a, k, m,   i, j, t, v) {
    for (i = 1; i <= m; i++) v[i] = a[k, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
    return v[int((m + 1) / 2)]
  }
  END { for (k in n) print k, med(rps, k, n[k]), med(p50, k, n[k]), med(p99, k, n[k]), med(us, k, n[k]) }' \
  "$work/results" | sort -k2,2n -k1,1 >"$work/medians"

label() {
  case $1 in
    autoturn) echo "autoturn ${customers}c" ;; small) echo "autoturn ${small_customers}c" ;;
    baseline) echo "baseline ${customers}c" ;; *) echo "$1" ;;
  esac
}
{
  printf '%-18s %4s %10s %8s %8s %12s\n' server c req/s "p50 ms" "p99 ms" "CPU us/req"
  while read -r s c r a b u; do
    printf '%-18s %4d %10.0f %8.3f %8.3f %12.2f\n' "$(label "$s")" "$c" "$r" "$a" "$b" "$u"
  done <"$work/medians"
  echo
  printf '%4s %15s %16s %19s %15s %17s\n' c "autoturn/limit" "CPU autoturn/limit" "autoturn/postgrey" \
    "1M/1k req/s" "CPU 1M/1k"
  awk '{ r[$1, $2] = $3; u[$1, $2] = $6; cs[$2] = 1 }
    END { for (c in cs) printf "%4d %15.2f %16.2f %19.1f %15.2f %17.2f\n", c,
            r["autoturn", c] / r["limit", c], u["autoturn", c] / u["limit", c],
            r["autoturn", c] / r["postgrey", c], r["autoturn", c] / r["small", c],
            u["autoturn", c] / u["small", c] }' "$work/medians" | sort -n
  echo "medians of $rounds round(s), ${duration} s each (+0.5 s warm-up)"
}
grep -Ei "error|fatal|protocol violation" "$work/big/policyd.log" "$work/small/policyd.log" >&2 || true

pg=postgrey
v=$(dpkg-query -W -f='${Version}' postgrey 2>/dev/null) && pg="postgrey ${v%-*}"
get() { awk -v s="$1" -v c="$c" -v f="$2" '$1 == s && $2 == c { print $f }' "$work/medians"; }
echo
for c in $conns; do
  if [ "$c" = 50 ]; then tl=">=0.85" tc="<=1.15" ts=">=0.95"; else tl=- tc=- ts=-; fi
  ratio policyd "req/s, c=$c" "$(get autoturn 3)" req/s "epoll DUNNO limit" "$(get limit 3)" "$tl"
  ratio policyd "server CPU per request, c=$c" "$(get autoturn 6)" us "epoll DUNNO limit" \
    "$(get limit 6)" "$tc"
  ratio policyd "req/s, c=$c, $customers customers + $grants grants" "$(get autoturn 3)" req/s \
    "$small_customers customers" "$(get small 3)" "$ts"
  ratio policyd "req/s, c=$c" "$(get autoturn 3)" req/s "$pg" "$(get postgrey 3)" -
  if [ "$c" = 50 ]; then
    ratio policyd "p99 latency, c=$c" "$(get autoturn 5)" ms budget 1 "<1"
  fi
done
