#!/bin/bash
# SPDX-License-Identifier: ISC
# bench/fuzz.sh - long libFuzzer runs, one target at a time on one core, at
# the lowest priority; one summary line per target.
#
# usage: bench/fuzz.sh [--cpu] SECONDS [TARGET...]
#   SECONDS  run time per target (3600: an hour)
#   --cpu    SECONDS of CPU time (user + system of the fuzzer), not of the
#            clock: on a shared machine a nice 19 process may get a tenth of
#            a core, and this still gives every target the same work
#   TARGET   custsrc envelope ctlproto policy policy_split usage smtpc odmr dsn milter grants mx import
#            (default: all of them, in that order)
# Environment: FUZZDIR (default build/fuzz, configured with clang and
# -DAUTOTURN_FUZZ=ON if it has no CMakeCache.txt), WORKDIR (default
# /var/tmp/autoturn-fuzz: the growing corpora, logs and any crash-* files;
# kept between runs so that a second run starts where the first stopped).
#
# Each line: target, wall seconds, CPU seconds (user + system: the
# machine may be shared), executions, exec/s of CPU time, cov (edges), ft
# (features), corpus entries, crashes. Exit status 1 when a target
# crashed, leaked or timed out (its crash-*/leak-*/timeout-* input is in
# WORKDIR/TARGET/), 2 on bad usage.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
fuzzdir=${FUZZDIR:-$root/build/fuzz}
work=${WORKDIR:-/var/tmp/autoturn-fuzz}
all="custsrc envelope ctlproto policy policy_split usage smtpc odmr dsn milter grants mx import"

cpu_budget=0
[ "${1:-}" = --cpu ] && { cpu_budget=1; shift; }
[ $# -ge 1 ] && [[ $1 =~ ^[0-9]+$ ]] || {
  sed -n '3,14{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
secs=$1; shift
targets=${*:-$all}

if [ ! -f "$fuzzdir/CMakeCache.txt" ]; then
  CC=clang cmake -S "$root" -B "$fuzzdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAUTOTURN_FUZZ=ON >/dev/null || exit 2
fi
nice cmake --build "$fuzzdir" -j2 --target fuzz_all >"$fuzzdir/fuzz-build.log" 2>&1 || {
  echo "bench/fuzz.sh: build failed: $fuzzdir/fuzz-build.log" >&2; exit 2; }

status=0
printf '%-9s %7s %7s %12s %8s %6s %7s %7s %7s\n' target wall cpu execs exec/s cov ft corpus crashes
for t in $targets; do
  bin=$fuzzdir/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "bench/fuzz.sh: no target $t" >&2; exit 2; }
  mkdir -p "$work/$t/corpus"
  log=$work/$t/run-$(date +%Y%m%dT%H%M%S).log
  start=$(date +%s)
  limit=$secs
  [ "$cpu_budget" = 1 ] && limit=$((secs * 1000))       # the CPU budget stops it
  (cd "$work/$t" && exec nice -n 19 "$bin" -max_total_time="$limit" -timeout=60 \
     -rss_limit_mb=2048 -print_final_stats=1 corpus "$root/tests/fuzz/corpus/$t") \
    >"$log" 2>&1 &
  pid=$!
  cpu=0 stopped=0
  while kill -0 "$pid" 2>/dev/null; do
    # utime + stime of the fuzzer itself, in seconds
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) / hz) }' "/proc/$pid/stat" 2>/dev/null ||
          echo "$cpu")
    if [ "$cpu_budget" = 1 ] && [ "$cpu" -ge "$secs" ]; then
      # libFuzzer prints its final statistics and exits (a background job
      # ignores SIGINT, so SIGTERM)
      kill -TERM "$pid"
      stopped=1
      break
    fi
    sleep 5
  done
  wait "$pid"
  rc=$?
  [ "$stopped" = 1 ] && rc=0      # its exit status then says "interrupted"; crashes are counted below
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(ls "$work/$t" | grep -cE '^(crash|leak|timeout|oom)-')
  [ "$rc" -eq 0 ] || status=1
  printf '%-9s %7s %7s %12s %8s %6s %7s %7s %7s\n' "$t" "$took" "$cpu" "${execs:-?}" \
    "$(( ${execs:-0} / (cpu > 0 ? cpu : 1) ))" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
done
exit $status
