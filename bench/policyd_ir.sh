#!/bin/bash
# SPDX-License-Identifier: ISC
# policyd_ir.sh - instructions per policy request of autoturn-policyd,
# counted by valgrind's callgrind: a figure that does not move with other
# load on the machine, unlike req/s (bench/policyd.sh), for comparing two
# builds of the request path. Not part of bench/all: it has no peer.
#
# Two runs of the daemon under callgrind on the same generated data
# (100,000 customers, 10,000 grants; bench/policyd_load's request mix, one
# connection): one with no requests (start-up and shut-down only), one with
# SECONDS of load. Instructions per request = (second - first) / requests.
# Prints the top functions of the loaded run by their own instructions.
#
# Usage: bench/policyd_ir.sh [SECONDS]   (as root; default 5; valgrind needed)
#   BUILDDIR   default build/release (the targets are brought up to date)
#   METRICS=1  with metrics { listen } set: bench/metrics.sh compares both
# Under callgrind the daemon runs 50 to 100 times slower: a run of 5 s
# sees about 20,000 requests.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILDDIR:-$root/build/release}
secs=${1:-5}
say() { echo "policyd_ir.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (the daemon runs as nobody)"
command -v valgrind >/dev/null || die "needs valgrind (Debian package valgrind)"
case $secs in ''|*[!0-9]*|0) die "SECONDS must be a positive whole number" ;; esac
[ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target bench_policyd_load autoturn-policyd autoturnctl >/dev/null ||
  die "build failed in $build"
load=$build/policyd/bench_policyd_load

work=$(mktemp -d /tmp/bench_policyd_ir.XXXXXX)
pid=""
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
chmod 777 "$work"                      # callgrind writes its file as nobody
"$load" gen 100000 10000 "$work"
"$build/ctl/autoturnctl" compile "$work/customers" "$work/customers.cdb" >/dev/null
chmod 644 "$work/customers" "$work/customers.cdb"
mkdir "$work/g"; mv "$work/grants" "$work/g/grants"; chown -R nobody:nogroup "$work/g"
metrics=""
[ "${METRICS:-0}" = 1 ] && metrics="metrics { listen = \"inet:127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')\" }"

# one run under callgrind: prints "REQUESTS INSTRUCTIONS"
run() {   # SECONDS (0: no load) OUTFILE
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
          $metrics }
flusher { control = "unix:$work/flusher.sock:0660" }
CONF
  # started as nobody (not dropping to it) so that callgrind can write its
  # file; setpriv execs, so the kill below reaches valgrind itself (runuser
  # would forward it and SIGKILL valgrind 2 s later, before a loaded
  # machine let it write its file)
  setpriv --reuid=nobody --regid=nogroup --clear-groups -- valgrind --tool=callgrind \
    --callgrind-out-file="$2" \
    "$build/policyd/autoturn-policyd" -f -c "$work/conf" 2>"$work/policyd.log" &
  pid=$!
  for i in $(seq 1 300); do
    grep -q "started:" "$work/policyd.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  grep -q "started:" "$work/policyd.log" || die "autoturn-policyd did not start: $(grep -v '^==' "$work/policyd.log" | tail -3)"
  if [ "$1" != 0 ]; then
    out=$("$load" run -c 1 -d "$1" -w 0 -C 100000 -G 10000 "inet:127.0.0.1:$port" 2>"$work/load.log") ||
      die "policyd_load: $(cat "$work/load.log")"
    n=$(echo "$out" | awk '{ print $2 }')
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "$n $(callgrind_annotate "$2" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')"
}

# run in this shell, not in <(...): its die and the daemon's pid must
# reach the cleanup
say "start-up only, under callgrind"
run 0 "$work/cg.idle" >"$work/r.idle"
read -r _ ir0 <"$work/r.idle"
say "$secs s of load, under callgrind"
run "$secs" "$work/cg.load" >"$work/r.load"
read -r n ir1 <"$work/r.load"
[ -n "$ir0" ] && [ -n "$ir1" ] && [ "$n" -gt 0 ] || die "no measurement (requests $n, instructions '$ir0' '$ir1')"
echo "requests: $n; instructions: start-up $ir0, with load $ir1"
echo "instructions per request: $(( (ir1 - ir0) / n ))"
if [ "${METRICS:-0}" = 1 ]; then   # the entry points the daemon calls, with what they call
  m=$(callgrind_annotate --inclusive=yes "$work/cg.load" 2>/dev/null | awk '
    $0 ~ /:metrics_(on|clock|elapsed|inc|observe|set) / { gsub(",", "", $1); s += $1 }
    END { print s + 0 }')
  echo "metrics calls per request: $(( m / n )) (inclusive, start-up included)"
fi
echo
echo "top functions of the loaded run (own instructions, start-up included):"
callgrind_annotate --inclusive=no "$work/cg.load" 2>/dev/null |
  sed -n '/file:function/,$p' | sed -n '3,14p'
