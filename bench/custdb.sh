#!/bin/sh
# SPDX-License-Identifier: ISC
# custdb.sh - does the customer table scale? Compiles 1,000 and 1,000,000
# customers and compares lookup rates (targets: compile of 1M < 60 s;
# lookups/s at 1M within 10% of 1k).
#
# Usage: bench/custdb.sh [BENCH_BINARY [WORKDIR]]
#   BENCH_BINARY  default: $BUILDDIR/bench/bench_custdb (built if missing)
#   WORKDIR       default: a new directory under /tmp (removed afterwards)
#   BUILDDIR      default build/release (RelWithDebInfo)
#   LOOKUPS       lookups per table (default 2000000)
#   LARGE         customers in the large table (default 1000000)
#   QUICK=1       LOOKUPS 200000 and LARGE 20000 unless set: checks the
#                 harness, measures nothing worth keeping
# Ends with RATIO lines (bench/ratio.sh, format in bench/all).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILDDIR:-$here/../build/release}
bench=${1:-$build/bench/bench_custdb}
work=${2:-}
if [ "${QUICK:-0}" = 1 ]; then
  lookups=${LOOKUPS:-200000}
  large_n=${LARGE:-20000}
else
  lookups=${LOOKUPS:-2000000}
  large_n=${LARGE:-1000000}
fi
. "$here/ratio.sh"

if [ $# -eq 0 ] && [ ! -x "$bench" ]; then
  cmake -S "$here/.." -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target bench_custdb -j2 >/dev/null
fi
[ -x "$bench" ] || { echo "custdb.sh: $bench: no bench binary (build target bench_custdb)" >&2; exit 1; }
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/bench_custdb.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/1k" "$work/1M"

small=$("$bench" -l "$lookups" 1000 "$work/1k")
large=$("$bench" -l "$lookups" "$large_n" "$work/1M")

echo "$small
$large" | awk '
  { n[NR] = $1; c[NR] = $2; rss[NR] = $3; d[NR] = $4; a[NR] = $5 }
  END {
    printf "%-10s %10s %12s %14s %14s\n", "customers", "compile s", "peak RSS MB", "domain/s", "address/s"
    for (i = 1; i <= 2; i++)
      printf "%-10d %10.2f %12.1f %14.0f %14.0f\n", n[i], c[i], rss[i] / 1024, d[i], a[i]
    printf "%-10s %10s %12s %14.2f %14.2f\n", "large/1k", "", "", d[2] / d[1], a[2] / a[1]
  }'

# shellcheck disable=SC2086
set -- $small
s_dom=$4 s_addr=$5
# shellcheck disable=SC2086
set -- $large
echo
ratio custdb "compile $1 customers" "$2" s budget 60 "<1"
# The target "within 10% of 1k" is retired (issue 19): it compared DRAM
# with the CPU caches; the table size is judged where it matters, the
# policy service's request rate with 1M customers (bench/policyd.sh).
ratio custdb "domain lookups, $1 customers" "$4" lookups/s "1000 customers" "$s_dom" "-"
ratio custdb "address lookups, $1 customers" "$5" lookups/s "1000 customers" "$s_addr" "-"
