#!/bin/bash
# milter.sh - throughput of autoturn-milter behind a private Postfix:
# smtp-source (10 sessions, 4 KiB messages) -> Postfix -> smtp-sink, in one
# run: (a) no milter, (b) autoturn-milter, no held recipient, (c)
# autoturn-milter, every recipient held. Prints msg/s and the ratios
# (targets: b >= 0.95 a, c >= 1.0 a). Needs root (private Postfix).
#
# usage: BUILDDIR=build AUTOTURNCTL=build/ctl/autoturnctl SRCDIR=. bench/milter.sh [MESSAGES]
set -u
N=${1:-2000}
: "${BUILDDIR:?}" "${AUTOTURNCTL:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/integration/lib/postfix.sh"
fail() { echo "bench: $*" >&2; exit 1; }
pass() { :; }
. "$SRCDIR/tests/integration/lib/milter.sh"

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
pf_set "$D/pf" "smtpd_milters ="; postfix -c "$D/pf/conf" reload >/dev/null 2>&1; sleep 1
a=$(rate a x@other.test)
pf_set "$D/pf" "smtpd_milters = unix:$D/run/milter.sock"; postfix -c "$D/pf/conf" reload >/dev/null 2>&1; sleep 1
b=$(rate b x@other.test)
c=$(rate c a@virt.dom)
held=$(find "$D/spool/acme/new" -type f | wc -l)
printf '(a) no milter:          %8.1f msg/s\n' "$a"
printf '(b) milter, not held:   %8.1f msg/s  b/a = %.3f (target >= 0.95)\n' "$b" "$(echo "$b / $a" | bc -l)"
printf '(c) milter, all held:   %8.1f msg/s  c/a = %.3f (target >= 1.0)\n' "$c" "$(echo "$c / $a" | bc -l)"
echo "messages: $N per run, 10 sessions, 4 KiB; held copies stored in (c): $held"
