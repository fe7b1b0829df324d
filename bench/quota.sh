#!/bin/bash
# SPDX-License-Identifier: ISC
# quota.sh - does a quota check cost more when much is held? Hold rate of
# autoturn-milter behind a private Postfix (smtp-source, 10 sessions,
# 4 KiB messages, every recipient held) for two customers with the same
# quota (max-messages 1000000) in one run: "empty" with nothing held,
# "full" with HELD messages (default 100,000) already in its spool.
# Target: full >= 0.95 x empty (the quota check is O(1): a usage record,
# not a scan of the spool).
#
# Then each customer's holds are traced with strace -c (TRACE messages):
# system calls per held message, a count load cannot change, for both.
#
# The held messages are written straight into full/new/ in the spool
# format (docs/spool-format.md; names with ",S=<size>"), without fsync, and
# the usage record is left to be built by the spool on first use (a
# warm-up message); the warm-up is not timed.
#
# usage: bench/quota.sh [MESSAGES]   (default 1000 per run; BUILDDIR default build/release)
#   ROUNDS   default 3 (empty and full interleaved, medians)
#   HELD     messages already held for "full" (default 100000)
#   TRACE    messages per traced run (default 300)
#   QUICK=1  200 messages, 1 round, HELD 10000 unless set: checks the harness
# Needs root (private Postfix). Ends with a RATIO line (bench/ratio.sh).
set -u
if [ "${QUICK:-0}" = 1 ]; then
  N=${1:-200}; ROUNDS=${ROUNDS:-1}; HELD=${HELD:-10000}; TRACE=${TRACE:-100}
else
  N=${1:-1000}; ROUNDS=${ROUNDS:-3}; HELD=${HELD:-100000}; TRACE=${TRACE:-300}
fi
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILDDIR=${BUILDDIR:-$SRCDIR/build/release}
if [ ! -x "$BUILDDIR/milter/autoturn-milter" ] || [ ! -x "$BUILDDIR/ctl/autoturnctl" ]; then
  [ -f "$BUILDDIR/CMakeCache.txt" ] ||
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
printf '%s\n' 'customer empty' '    domain empty.dom' '    max-messages 1000000' \
  'customer full' '    domain full.dom' '    max-messages 1000000' | mt_customers "$D" ||
  fail "compile"
mt_config "$D"
sed -i 's/check_interval = 0s/check_interval = 1s/' "$D/autoturn.conf"   # the default

echo "writing $HELD held messages for customer full" >&2
python3 - "$D/spool/full" "$HELD" <<'PY' || fail "fill"
import os, sys, time
cdir, n = sys.argv[1], int(sys.argv[2])
for sub in ("tmp", "new", "cur", "bad"):
    os.makedirs(os.path.join(cdir, sub), mode=0o700, exist_ok=True)
body = b"Subject: held\r\n\r\n" + b"x" * 76 + b"\r\n"
body = body * (4096 // len(body))
t0 = int(time.time()) - n
for i in range(n):
    t = t0 + i
    env = (b"X-Autoturn-Version: 1\nX-Autoturn-Customer: full\nX-Autoturn-Arrival: %d\n"
           b"X-Autoturn-Sender: <s@example.org>\nX-Autoturn-Rcpt: <a@full.dom>\n"
           b"X-Autoturn-End:\n" % t)
    data = env + body
    name = "%d.M%06dP1Q%d.benchfill,S=%d" % (t, i % 1000000, i, len(data))
    with open(os.path.join(cdir, "new", name), "wb") as f:
        f.write(data)
PY
chown -R nobody "$D/spool"
sync

mt_start "$D" || fail "milter did not start: $(cat "$D/milter.log")"
PORT=$(free_port); SINKPORT=$(free_port)
sink_start MT "127.0.0.1:$SINKPORT" "$D/sink" || fail "sink"
mt_postfix "$D" "$PORT" "$SINKPORT" "empty.dom full.dom"
pf_set "$D/pf" "default_process_limit = 100"
pf_start "$D/pf" >"$D/pf-start.log" 2>&1 || fail "postfix: $(cat "$D/pf-start.log")"
wait_port 127.0.0.1 "$PORT"

send() {   # COUNT RCPT
  smtp-source -s 10 -l 4096 -m "$1" -f s@example.org -t "$2" "127.0.0.1:$PORT" ||
    fail "smtp-source"
}
t0=$(date +%s.%N); send 1 a@full.dom; t1=$(date +%s.%N)
echo "first message for full (the usage record is built): $(echo "$t1 - $t0" | bc) s" >&2
send 50 a@empty.dom; send 50 a@full.dom                 # warm-up

rate() {
  local t0 t1
  t0=$(date +%s.%N); send "$N" "$1"; t1=$(date +%s.%N)
  echo "$N / ($t1 - $t0)" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
E=() F=()
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then E+=("$(rate a@empty.dom)"); F+=("$(rate a@full.dom)")
  else F+=("$(rate a@full.dom)"); E+=("$(rate a@empty.dom)"); fi
done
e=$(median "${E[@]}"); f=$(median "${F[@]}")

# trace RCPT - system calls per held message of the milter (strace -c)
trace() {
  local out=$D/strace.${1#*@} st
  strace -f -c -o "$out" -p "$MT_PID" 2>/dev/null &
  st=$!
  sleep 1
  send "$TRACE" "$1"
  sleep 0.5
  kill -INT "$st"; wait "$st" 2>/dev/null
  awk -v n="$TRACE" '$NF == "total" { printf "%.1f\n", $4 / n }' "$out"
}
SC_E=$(trace a@empty.dom); SC_F=$(trace a@full.dom)
pf_wait_log "$D/pf" "milter-discard" 5 >/dev/null 2>&1 || true
held=$(find "$D/spool/full/new" -type f | wc -l)
printf 'hold rate, empty spool:          %8.1f msg/s\n' "$e"
printf 'hold rate, %6d already held:   %8.1f msg/s  full/empty = %.3f (target >= 0.95)\n' \
  "$HELD" "$f" "$(echo "$f / $e" | bc -l)"
echo "messages: $N per run, 10 sessions, 4 KiB, every recipient held, median of $ROUNDS rounds; full/new now holds $held"
printf 'rounds (msg/s): empty=%s  full=%s\n' "${E[*]}" "${F[*]}"
echo "system calls per held message (strace -c, $TRACE messages): empty $SC_E, full $SC_F"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
ratio quota "syscalls per held message, $HELD held" "$SC_F" calls "same, empty spool" "$SC_E" - ||
  fail "ratio"
ratio quota "hold rate, quota customer, $HELD held" "$f" msg/s "same, empty spool" "$e" ">=0.95" ||
  fail "ratio"
