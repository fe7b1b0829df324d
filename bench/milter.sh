#!/bin/bash
# SPDX-License-Identifier: ISC
# milter.sh - throughput of autoturn-milter behind a private Postfix:
# smtp-source (10 sessions, 4 KiB messages) -> Postfix -> smtp-sink, in one
# run: (a) no milter, (b) autoturn-milter, no held recipient, (c)
# autoturn-milter, every recipient held. Prints msg/s and the ratios
# (targets: b >= 0.95 a, c >= 1.0 a). Needs root (private Postfix).
#
# Three rounds, (a) (b) (c) interleaved; the median of each is reported.
#
# usage: bench/milter.sh [MESSAGES]    (BUILDDIR default build/release, built if needed)
#   ROUNDS     default 3
#   QUICK=1    200 messages and 1 round unless set: checks the harness,
#              measures nothing worth keeping
# Ends with RATIO lines (bench/ratio.sh, format in bench/all).
set -u
if [ "${QUICK:-0}" = 1 ]; then
  N=${1:-200}; ROUNDS=${ROUNDS:-1}
else
  N=${1:-2000}; ROUNDS=${ROUNDS:-3}
fi
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILDDIR=${BUILDDIR:-$SRCDIR/build/release}
if [ ! -x "$BUILDDIR/milter/autoturn-milter" ] || [ ! -x "$BUILDDIR/ctl/autoturnctl" ]; then
  cmake -S "$SRCDIR" -B "$BUILDDIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILDDIR" -j2 --target autoturn-milter autoturnctl >/dev/null
fi
AUTOTURNCTL=${AUTOTURNCTL:-$BUILDDIR/ctl/autoturnctl}
export BUILDDIR AUTOTURNCTL SRCDIR
. "$SRCDIR/tests/integration/lib/postfix.sh"
fail() { echo "bench: $*" >&2; exit 1; }
pass() { :; }
. "$SRCDIR/tests/integration/lib/milter.sh"
. "$SRCDIR/bench/ratio.sh"

D=$(mt_dir)
trap 'mt_down "$D"; rm -rf "$D"' EXIT
printf 'customer acme\n    domain virt.dom\n' | mt_customers "$D" || fail "compile"
mt_up "$D" "virt.dom" || fail "start"
pf_set "$D/pf" "default_process_limit = 100"
postfix -c "$D/pf/conf" reload >/dev/null 2>&1; sleep 1

# rate LABEL RCPT - msg/s accepted by Postfix (smtp-source wall time)
rate() {
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s 10 -l 4096 -m "$N" -f s@example.org -t "$2" "127.0.0.1:$PORT" || fail "smtp-source"
  t1=$(date +%s.%N)
  echo "$N / ($t1 - $t0)" | bc -l
}

smtp-source -s 10 -l 4096 -m 200 -f s@example.org -t x@other.test "127.0.0.1:$PORT"   # warm-up
milter_on() {
  pf_set "$D/pf" "smtpd_milters = ${1:+unix:$D/run/milter.sock}"
  postfix -c "$D/pf/conf" reload >/dev/null 2>&1; sleep 1
}
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
A=(); B=(); C=()
for round in $(seq 1 "$ROUNDS"); do
  milter_on ""; A+=("$(rate a x@other.test)")
  milter_on yes; B+=("$(rate b x@other.test)"); C+=("$(rate c a@virt.dom)")
done
a=$(median "${A[@]}"); b=$(median "${B[@]}"); c=$(median "${C[@]}")
held=$(find "$D/spool/acme/new" -type f | wc -l)
printf '(a) no milter:          %8.1f msg/s\n' "$a"
printf '(b) milter, not held:   %8.1f msg/s  b/a = %.3f (target >= 0.95)\n' "$b" "$(echo "$b / $a" | bc -l)"
printf '(c) milter, all held:   %8.1f msg/s  c/a = %.3f (target >= 1.0)\n' "$c" "$(echo "$c / $a" | bc -l)"
echo "messages: $N per run, 10 sessions, 4 KiB, median of $ROUNDS rounds; held copies stored in (c): $held"
printf 'rounds (msg/s): a=%s  b=%s  c=%s\n' "${A[*]}" "${B[*]}" "${C[*]}"
echo
ratio milter "msg/s, milter, nothing held" "$b" msg/s "postfix, no milter" "$a" ">=0.95" || fail "ratio"
ratio milter "msg/s, milter, all held" "$c" msg/s "postfix, no milter" "$a" ">=1.0" || fail "ratio"
