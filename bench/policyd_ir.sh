#!/bin/bash
# SPDX-License-Identifier: ISC
# policyd_ir.sh - instructions per policy request of autoturn-policyd,
# counted by valgrind's callgrind: a figure that does not move with other
# load on the machine, unlike req/s (bench/policyd.sh), for comparing two
# builds of the request path. Not part of bench/all: it has no peer.
#
# Three runs of the daemon under callgrind on the same generated data
# (100,000 customers, 10,000 grants; bench/policyd_load's request mix, one
# connection): A with no requests (start-up and shut-down only), B with
# REQUESTS requests, C with the same REQUESTS requests twice (policyd_load
# always sends the same sequence). Instructions per request:
#   first pass  (B - A) / REQUESTS   every client address new to the daemon
#                                    (most registered ones cause an AutoTURN
#                                    notice; the figure earlier notes quote)
#   steady      (C - B) / REQUESTS   the same requests again: what a loaded
#                                    server does most of the time (the notices
#                                    are deduplicated for notify_interval,
#                                    set to 1 h here: under callgrind a pass
#                                    can take longer than the default 60 s)
# and the steady figure per function (own cost).
#
# Usage: bench/policyd_ir.sh [REQUESTS]  (as root; default 20000; valgrind needed)
#   BUILDDIR   default build/release (the targets are brought up to date)
#   CUSTOMERS, GRANTS   default 100000, 10000
#   CACHESIM=1 also simulate the caches (callgrind --cache-sim=yes) and
#              print data cache misses per request, first-level (D1) and
#              last-level (DL): what the table size costs, which
#              instructions do not show (about twice as slow). The
#              simulated caches are one core's (32 KiB L1, and 2 MiB L2 as
#              the last level: the L3 is shared with every other process
#              on the machine, so it is not counted on)
#   LOG_DECISIONS=true  with the info line per request (default false, as
#              bench/policyd.sh and the figures before it existed)
#   METRICS=1  with metrics { listen } set, and the instructions spent in
#              the metrics calls per request, steady (bench/metrics.sh
#              compares both)
#   POLICYD    the daemon to measure (default BUILDDIR's), e.g. another
#              build's, to compare two builds with the same load tool
# Under callgrind the daemon runs 50 to 100 times slower: 20,000 requests
# take 5 to 20 s, depending on the load on the machine (the count does
# not).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILDDIR:-$root/build/release}
reqs=${1:-20000}
customers=${CUSTOMERS:-100000}
grants=${GRANTS:-10000}
say() { echo "policyd_ir.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (the daemon runs as nobody)"
command -v valgrind >/dev/null || die "needs valgrind (Debian package valgrind)"
case $reqs in ''|*[!0-9]*|0) die "REQUESTS must be a positive whole number" ;; esac
[ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target bench_policyd_load autoturn-policyd autoturnctl >/dev/null ||
  die "build failed in $build"
load=$build/policyd/bench_policyd_load
policyd=${POLICYD:-$build/policyd/autoturn-policyd}

work=$(mktemp -d /tmp/bench_policyd_ir.XXXXXX)
pid=""
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
chmod 777 "$work"                      # callgrind writes its file as nobody
"$load" gen "$customers" "$grants" "$work"
"$build/ctl/autoturnctl" compile "$work/customers" "$work/customers.cdb" >/dev/null
chmod 644 "$work/customers" "$work/customers.cdb"
mv "$work/grants" "$work/grants.orig"
metrics=""
[ "${METRICS:-0}" = 1 ] && metrics="metrics { listen = \"inet:127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')\" }"

# one run under callgrind: prints "REQUESTS INSTRUCTIONS"
run() {   # REQUESTS OUTFILE PASSES (0: no load)
  local port out n=0 i
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$work/conf" <<CONF
log { destination = stderr
      level = info }
customers { source = "$work/customers"
            table = "$work/customers.cdb" }
policyd { listen = { "inet:127.0.0.1:$port" }
          control = "unix:$work/control.sock:0600"
          user = nobody
          group = nogroup
          grant_file = "$work/g/grants"
          notify_interval = 1h
          log_decisions = ${LOG_DECISIONS:-false}
          $metrics }
flusher { control = "unix:$work/flusher.sock:0660" }
CONF
  # every run starts from the same grants (the last one's renewals and new
  # grants would make this start-up dearer)
  rm -rf "$work/g"; mkdir "$work/g"; cp "$work/grants.orig" "$work/g/grants"
  chown -R nobody:nogroup "$work/g"
  # started as nobody (not dropping to it) so that callgrind can write its
  # file; setpriv execs, so $! is valgrind itself and "wait" sees it finish
  # writing
  setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
    valgrind --tool=callgrind --callgrind-out-file="$2" \
    ${CACHESIM:+--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=2097152,16,64} \
    "$policyd" -f -c "$work/conf" 2>"$work/policyd.log" &
  pid=$!
  for i in $(seq 1 300); do
    grep -q "started:" "$work/policyd.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  grep -q "started:" "$work/policyd.log" || die "autoturn-policyd did not start: $(grep -v '^==' "$work/policyd.log" | tail -3)"
  local pass
  for pass in $(seq 1 "$3"); do
    out=$("$load" run -c 1 -n "$1" -w 0 -C "$customers" -G "$grants" "inet:127.0.0.1:$port" \
      2>"$work/load.log") ||
      die "policyd_load: $(cat "$work/load.log")"
    n=$(echo "$out" | awk '{ print $2 }')
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "$n $(callgrind_annotate --auto=no "$2" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')"
}

# run in this shell, not in <(...): its die and the daemon's pid must
# reach the cleanup
say "A: start-up only, under callgrind"
run "$reqs" "$work/cg.idle" 0 >"$work/r.idle"
read -r _ ir0 <"$work/r.idle"
say "B: $reqs requests, under callgrind"
run "$reqs" "$work/cg.first" 1 >"$work/r.first"
read -r n ir1 <"$work/r.first"
say "C: the same $reqs requests twice, under callgrind"
run "$reqs" "$work/cg.load" 2 >"$work/r.load"
read -r n2 ir2 <"$work/r.load"
[ -n "$ir0" ] && [ -n "$ir1" ] && [ -n "$ir2" ] && [ "$n" = "$reqs" ] && [ "$n2" = "$reqs" ] ||
  die "no measurement (requests $n $n2 of $reqs, instructions '$ir0' '$ir1' '$ir2')"
mkdir -p "$root/build/bench" && cp "$work/cg.load" "$root/build/bench/policyd_ir.callgrind" &&
  say "profile of run C: build/bench/policyd_ir.callgrind (callgrind_annotate)"
echo "requests: $reqs per pass; instructions: A $ir0, B $ir1, C $ir2"
echo "instructions per request, first pass: $(( (ir1 - ir0) / reqs ))"
echo "instructions per request, steady: $(( (ir2 - ir1) / reqs ))"
if [ "${CACHESIM:-0}" = 1 ]; then
  # every event's total (Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw) per run
  totals() {
    callgrind_annotate --auto=no "$1" 2>/dev/null |
      awk '/^Events shown:/ { for (i = 3; i <= NF; i++) ev[i - 2] = $i; n = NF - 2 }
           /PROGRAM TOTALS/ { k = 0
             for (i = 1; i <= NF && k < n; i++) if ($i ~ /^[0-9,]+$/) { v = $i; gsub(",", "", v); print ev[++k], v } }'
  }
  totals "$work/cg.first" >"$work/ev.first"
  totals "$work/cg.load" >"$work/ev.load"
  awk -v n="$reqs" 'NR == FNR { a[$1] = $2; next }
    { d[$1] = ($2 - a[$1]) / n }
    END { printf "data cache misses per request, steady: D1 %.1f (read %.1f, write %.1f), " \
                 "last level %.1f (read %.1f, write %.1f)\n", d["D1mr"] + d["D1mw"], d["D1mr"],
                 d["D1mw"], d["DLmr"] + d["DLmw"], d["DLmr"], d["DLmw"] }' \
    "$work/ev.first" "$work/ev.load"
fi
if [ "${METRICS:-0}" = 1 ]; then   # the entry points the daemon calls, with what they call
  mcalls() {
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null | awk '
      $0 ~ /:metrics_(on|clock|elapsed|inc|observe|set) / { gsub(",", "", $1); s += $1 }
      END { print s + 0 }'
  }
  echo "metrics calls per request: $(( ($(mcalls "$work/cg.load") - $(mcalls "$work/cg.first")) / reqs )) (inclusive, steady)"
fi
echo
echo "instructions per request by function, steady (C minus B, own cost):"
own() {
  callgrind_annotate --auto=no --inclusive=no --threshold=100 "$1" 2>/dev/null |
    awk '/file:function/ { on = 1; getline; next }
         on && /^ *$/ { exit }
         on && match($0, /^ *[0-9,]+ +\( *[0-9.]+%\) +/) {
           n = $1; gsub(",", "", n); f = substr($0, RLENGTH + 1)
           sub(/ \[.*$/, "", f); sub(/^.*:/, "", f); c[f] += n }
         END { for (f in c) print f, c[f] }'
}
own "$work/cg.first" >"$work/own.idle"
own "$work/cg.load" >"$work/own.load"
awk -v n="$reqs" 'NR == FNR { idle[$1] = $2; next }
  { d = ($2 - idle[$1]) / n; if (d >= 20) printf "  %-40s %8.0f\n", $1, d }' \
  "$work/own.idle" "$work/own.load" | sort -k2 -g -r | head -20
