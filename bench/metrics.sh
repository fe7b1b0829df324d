#!/bin/bash
# SPDX-License-Identifier: ISC
# metrics.sh - what the Prometheus metrics cost (docs/METRICS.md), against
# the same daemon with metrics off, in one run:
#   1. instructions per policy request of autoturn-policyd (callgrind: a
#      figure other load cannot move), by bench/policyd_ir.sh with
#      metrics { listen } unset, then set, and in the second run the
#      instructions spent in the metrics calls per request (two clock
#      reads, the decision's counter, the latency histogram): the ratio is
#      (off + those) / off;
#   2. bench_metrics: nanoseconds per update primitive and per exposition
#      (wall clock: informational).
# Not part of bench/all.
#
# Usage: bench/metrics.sh [REQUESTS]  (as root; default 20000; valgrind needed)
#   BUILDDIR   default build/release
# Ends with a RATIO line (bench/ratio.sh, format in bench/all).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILDDIR:-$root/build/release}
reqs=${1:-20000}
. "$here/ratio.sh"
die() { echo "metrics.sh: $*" >&2; exit 1; }

ir() {   # METRICS (0|1) - policyd_ir.sh's report
  METRICS=$1 BUILDDIR=$build "$here/policyd_ir.sh" "$reqs" |
    grep -E '^(requests|instructions per request, steady|metrics calls per request):' ||
    die "policyd_ir.sh failed"
}

off_report=$(ir 0)
on_report=$(ir 1)
printf 'metrics off: %s\n' "$off_report"
printf 'metrics on:  %s\n' "$on_report"
off=$(printf '%s\n' "$off_report" | sed -n 's/^instructions per request, steady: \([0-9]*\)$/\1/p')
on=$(printf '%s\n' "$on_report" | sed -n 's/^instructions per request, steady: \([0-9]*\)$/\1/p')
calls=$(printf '%s\n' "$on_report" | sed -n 's/^metrics calls per request: \([0-9]*\) .*/\1/p')
[ -n "$off" ] && [ -n "$on" ] && [ -n "$calls" ] || die "no measurement"
# The two runs generate their own data,
# so their totals differ by a few per cent either way; the metrics calls
# of the "on" run, counted exactly, are the cost.
cmake --build "$build" -j2 --target bench_metrics >/dev/null || die "build failed in $build"
"$build/bench/bench_metrics" |
  awk '{ printf "%-28s %s %s\n", $1, $2, ($1 == "expose_bytes" ? "bytes" : "ns") }'
ratio metrics "policyd instructions per request, metrics off + metrics calls" \
  "$((off + calls))" instr "metrics off" "$off" "<=1.05"
