#!/bin/sh
# custdb.sh - does the customer table scale? Compiles 1,000 and 1,000,000
# customers and compares lookup rates (targets: compile of 1M < 60 s;
# lookups/s at 1M within 10% of 1k).
#
# Usage: bench/custdb.sh [BENCH_BINARY [WORKDIR]]
#   BENCH_BINARY  default: build/release/bench/bench_custdb (built if missing)
#   WORKDIR       default: a new directory under /tmp (removed afterwards)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bench=${1:-$here/../build/release/bench/bench_custdb}
work=${2:-}
lookups=${LOOKUPS:-2000000}

if [ $# -eq 0 ] && [ ! -x "$bench" ]; then
  cmake -S "$here/.." -B "$here/../build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$here/../build/release" --target bench_custdb -j2 >/dev/null
fi
[ -x "$bench" ] || { echo "custdb.sh: $bench: no bench binary (build target bench_custdb)" >&2; exit 1; }
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/bench_custdb.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/1k" "$work/1M"

small=$("$bench" -l "$lookups" 1000 "$work/1k")
large=$("$bench" -l "$lookups" 1000000 "$work/1M")

echo "$small
$large" | awk '
  { n[NR] = $1; c[NR] = $2; rss[NR] = $3; d[NR] = $4; a[NR] = $5 }
  END {
    printf "%-10s %10s %12s %14s %14s\n", "customers", "compile s", "peak RSS MB", "domain/s", "address/s"
    for (i = 1; i <= 2; i++)
      printf "%-10d %10.2f %12.1f %14.0f %14.0f\n", n[i], c[i], rss[i] / 1024, d[i], a[i]
    printf "%-10s %10s %12s %14.2f %14.2f\n", "1M/1k", "", "", d[2] / d[1], a[2] / a[1]
  }'
