#!/bin/bash
# SPDX-License-Identifier: ISC
# policyd.sh - how fast is autoturn-policyd? One run, everything on
# loopback: autoturn-policyd (1,000,000 customers, 100,000 live grants),
# postgrey (Debian package, installed if missing) and bench/policyd_limit
# (a minimal epoll server answering action=DUNNO: the upper bound) are
# each driven by bench/policyd_load at c = 1, 10, 50 persistent
# connections (RCPT requests, Postfix attributes). Prints req/s, p50, p99,
# the server's CPU time per request (user + system of its process, from
# /proc, over the measured run: steadier than req/s when the load
# generator and the server share two cores with other load) and the ratios
# autoturn/limit and autoturn/postgrey.
# Targets: at c = 50, autoturn >= 0.8 x limit and >= 50 x postgrey; p99 < 1 ms.
#
# Usage: bench/policyd.sh            (as root: postgrey and the daemon run as nobody)
#   BUILDDIR   default build/release (RelWithDebInfo; targets built if missing)
#   DURATION   seconds per measurement (default 5; plus 0.5 s warm-up)
#   CUSTOMERS, GRANTS  default 1000000, 100000
#   CONNS      default "1 10 50"
#   KEEP=1     keep the work directory (logs, data) and print its name
#   QUICK=1    DURATION 1, CUSTOMERS 10000, GRANTS 1000, CONNS "1 50" unless
#              set: checks the harness, measures nothing worth keeping
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
else
  duration=${DURATION:-5}
  customers=${CUSTOMERS:-1000000}
  grants=${GRANTS:-100000}
  conns=${CONNS:-1 10 50}
fi
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

# --- data ---
say "generating $customers customers and $grants grants"
"$load" gen "$customers" "$grants" "$work"
t0=$(date +%s.%N)
"$ctl" compile "$work/customers" "$work/customers.cdb" >/dev/null
t1=$(date +%s.%N)
say "compiled in $(echo "$t1 - $t0" | bc) s"
chmod 644 "$work/customers" "$work/customers.cdb"
mv "$work/grants" "$work/grants.snapshot"
mkdir "$work/grants" "$work/postgrey"
mv "$work/grants.snapshot" "$work/grants/grants"
chown -R nobody:nogroup "$work/grants" "$work/postgrey"

# --- autoturn-policyd ---
p_pd=$(free_port)
cat >"$work/autoturn.conf" <<CONF
log {
    destination = stderr
    level = info
}
customers {
    source = "$work/customers"
    table = "$work/customers.cdb"
}
policyd {
    listen = { "inet:127.0.0.1:$p_pd" }
    control = "unix:$work/control.sock:0600"
    user = nobody
    group = nogroup
    grant_file = "$work/grants/grants"
}
flusher {
    control = "unix:$work/flusher.sock:0660"
}
CONF
"$policyd" -f -c "$work/autoturn.conf" 2>"$work/policyd.log" &
pid_autoturn=$!
pids="$pids $!"
wait_port "$p_pd" || die "autoturn-policyd did not start: $(tail -3 "$work/policyd.log")"
for i in $(seq 1 600); do   # the sockets are bound before the grants are loaded
  grep -q "started:" "$work/policyd.log" && break
  sleep 0.1
done
grep -q "grants: $grants live grants loaded" "$work/policyd.log" ||
  die "autoturn-policyd did not load $grants grants: $(tail -3 "$work/policyd.log")"

# --- the limit ---
p_lim=$(free_port)
"$limit" "127.0.0.1:$p_lim" 2>"$work/limit.log" &
pid_limit=$!
pids="$pids $!"
wait_port "$p_lim" || die "policyd_limit did not start: $(cat "$work/limit.log")"

# --- postgrey: private db, no whitelists, 1 s delay (nothing waits anyway) ---
p_pg=$(free_port)
: >"$work/postgrey/whitelist_clients"
: >"$work/postgrey/whitelist_recipients"
postgrey --inet="127.0.0.1:$p_pg" --dbdir="$work/postgrey" --user=nobody --group=nogroup \
  --delay=1 --whitelist-clients="$work/postgrey/whitelist_clients" \
  --whitelist-recipients="$work/postgrey/whitelist_recipients" \
  --hostname=bench.invalid 2>"$work/postgrey.log" &
pid_postgrey=$!
pids="$pids $!"
wait_port "$p_pg" || die "postgrey did not start: $(tail -3 "$work/postgrey.log")"

# CPU ticks (user + system, all threads) of a server process so far
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# --- runs, interleaved so that background noise hits all three alike ---
say "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
: >"$work/results"
for c in $conns; do
  for s in limit autoturn postgrey; do
    case $s in
      limit) port=$p_lim ;; autoturn) port=$p_pd ;; postgrey) port=$p_pg ;;
    esac
    eval "spid=\$pid_$s"
    t0=$(cpu_ticks "$spid")
    line=$("$load" run -c "$c" -d "$duration" -C "$customers" -G "$grants" \
      "inet:127.0.0.1:$port" 2>"$work/load.$s.$c.log") ||
      die "$s at c=$c: $(cat "$work/load.$s.$c.log")"
    t1=$(cpu_ticks "$spid")
    # microseconds of server CPU per request; the ticks include the warm-up
    # (0.5 s), so the requests do too: req/s x (duration + 0.5)
    us=$(echo "$line" | awk -v t="$((t1 - t0))" -v hz="$hz" -v d="$duration" \
      '{ n = $4 * (d + 0.5); printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0) }')
    echo "$s $line $us" >>"$work/results"
    say "$s c=$c: $line, server CPU $us us/request ($(sed -n 's/^policyd_load: action //p' "$work/load.$s.$c.log" | paste -sd, -))"
  done
done

say "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
  { srv[NR] = $1; c[NR] = $2; rps[NR] = $5; p50[NR] = $6; p99[NR] = $7; us[NR] = $8
    r[$1 "," $2] = $5; u[$1 "," $2] = $8 }
  END {
    printf "%-10s %4s %10s %8s %8s %12s\n", "server", "c", "req/s", "p50 ms", "p99 ms", "CPU us/req"
    for (i = 1; i <= NR; i++)
      printf "%-10s %4d %10.0f %8.3f %8.3f %12.2f\n", srv[i], c[i], rps[i], p50[i], p99[i], us[i]
    printf "\n%4s %16s %19s %20s\n", "c", "autoturn/limit", "autoturn/postgrey", "CPU autoturn/limit"
    for (i = 1; i <= NR; i++) {
      if (srv[i] != "autoturn") continue
      a = rps[i]; l = r["limit," c[i]]; g = r["postgrey," c[i]]; ul = u["limit," c[i]]
      printf "%4d %16.2f %19.1f %20.2f\n", c[i], l ? a / l : 0, g ? a / g : 0, ul ? us[i] / ul : 0
    }
  }' "$work/results"
grep -Ei "error|fatal|protocol violation" "$work/policyd.log" >&2 || true

pg=postgrey
v=$(dpkg-query -W -f='${Version}' postgrey 2>/dev/null) && pg="postgrey ${v%-*}"
get() { awk -v s="$1" -v c="$c" -v f="$2" '$1 == s && $2 == c { print $f }' "$work/results"; }
echo
for c in $conns; do
  if [ "$c" = 50 ]; then tl=">=0.8" tg=">=50"; else tl=- tg=-; fi
  ratio policyd "req/s, c=$c" "$(get autoturn 5)" req/s "epoll DUNNO limit" "$(get limit 5)" "$tl"
  ratio policyd "req/s, c=$c" "$(get autoturn 5)" req/s "$pg" "$(get postgrey 5)" "$tg"
  if [ "$c" = 50 ]; then
    ratio policyd "p99 latency, c=$c" "$(get autoturn 7)" ms budget 1 "<1"
    ratio policyd "server CPU per request, c=$c" "$(get autoturn 8)" us "epoll DUNNO limit" "$(get limit 8)" -
  fi
done
