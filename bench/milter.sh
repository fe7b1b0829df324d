#!/bin/bash
# SPDX-License-Identifier: ISC
# milter.sh - the cost of autoturn-milter to Postfix, against the least a
# milter can cost. smtp-source (10 sessions, 4 KiB messages) -> a private
# Postfix on loopback -> smtp-sink, in one run, five ways:
#   (a) Postfix, no milter
#   (m) the minimal milter (bench_milter_peer minimal: CONTINUE at
#       connect, MAIL, RCPT; ACCEPT at DATA)
#   (b) autoturn-milter, nothing held
#   (s) the minimal storing milter (bench_milter_peer store: every message
#       written to a maildir with fsync of the file, link, fsync of new/,
#       then DISCARD)
#   (c) autoturn-milter, every recipient held (stored, then DISCARD)
# Both peers are built from bench/milter_peer.c on the same libmilter and
# negotiate the same protocol economies as autoturn-milter.
# Targets: b >= 0.97 m; c >= 1.0 s; c >= 1.0 b.
#
# The rates are medians of ROUNDS rounds, the five runs interleaved in
# each round (the order rotates from round to round); so is each milter's
# CPU time per message (user + system of its process, from /proc). Then, for figures
# that load cannot change, each milter is traced with strace -c while
# TRACE messages pass: system calls and fsyncs per message.
#
# usage: bench/milter.sh [MESSAGES]    (BUILDDIR default build/release, built if needed)
#   ROUNDS     default 3
#   TRACE      messages per traced run (default 500)
#   QUICK=1    200 messages, 1 round, TRACE 100 unless set: checks the
#              harness, measures nothing worth keeping
# Needs root (private Postfix). Ends with RATIO lines (bench/ratio.sh,
# format in bench/all).
set -u
if [ "${QUICK:-0}" = 1 ]; then
  N=${1:-200}; ROUNDS=${ROUNDS:-1}; TRACE=${TRACE:-100}
else
  N=${1:-2000}; ROUNDS=${ROUNDS:-3}; TRACE=${TRACE:-500}
fi
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILDDIR=${BUILDDIR:-$SRCDIR/build/release}
PEER=$BUILDDIR/bench/bench_milter_peer
if [ ! -x "$BUILDDIR/milter/autoturn-milter" ] || [ ! -x "$BUILDDIR/ctl/autoturnctl" ] ||
   [ ! -x "$PEER" ]; then
  [ -f "$BUILDDIR/CMakeCache.txt" ] ||
    cmake -S "$SRCDIR" -B "$BUILDDIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILDDIR" -j2 --target autoturn-milter autoturnctl bench_milter_peer >/dev/null
fi
AUTOTURNCTL=${AUTOTURNCTL:-$BUILDDIR/ctl/autoturnctl}
export BUILDDIR AUTOTURNCTL SRCDIR
. "$SRCDIR/tests/integration/lib/postfix.sh"
fail() { echo "bench: $*" >&2; exit 1; }
pass() { :; }
. "$SRCDIR/tests/integration/lib/milter.sh"
. "$SRCDIR/bench/ratio.sh"
command -v strace >/dev/null || fail "needs strace (Debian package strace)"

D=$(mt_dir)
PEER_PIDS=""
cleanup() {
  local p
  for p in $PEER_PIDS; do kill "$p" 2>/dev/null; done
  for p in $PEER_PIDS; do wait "$p" 2>/dev/null; done
  mt_down "$D"
  rm -rf "$D"
}
trap cleanup EXIT
printf 'customer acme\n    domain virt.dom\n' | mt_customers "$D" || fail "compile"
mt_up "$D" "virt.dom" || fail "start"
pf_set "$D/pf" "default_process_limit = 100"
# the tests look at the customer table on every lookup; a site does not
mt_stop
sed -i 's/check_interval = 0s/check_interval = 1s/' "$D/autoturn.conf"
mt_start "$D" || fail "milter did not start again: $(tail -3 "$D/milter.log")"

# the peers, as root, on their own sockets
"$PEER" minimal "unix:$D/run/minimal.sock" 2>"$D/minimal.log" &
PID_m=$!; PEER_PIDS="$PEER_PIDS $!"
"$PEER" store "unix:$D/run/store.sock" "$D/peer-maildir" 2>"$D/store.log" &
PID_s=$!; PEER_PIDS="$PEER_PIDS $!"
PID_b=$MT_PID PID_c=$MT_PID
for i in $(seq 1 100); do
  [ -S "$D/run/minimal.sock" ] && [ -S "$D/run/store.sock" ] && break
  sleep 0.1
done
[ -S "$D/run/minimal.sock" ] && [ -S "$D/run/store.sock" ] || fail "peers did not start"

# use KIND - point Postfix at the milter of run KIND (a: none) and warm up
use() {
  local sock
  case $1 in
    a) sock="" ;;
    m) sock="unix:$D/run/minimal.sock" ;;
    s) sock="unix:$D/run/store.sock" ;;
    b|c) sock="unix:$D/run/milter.sock" ;;
  esac
  pf_set "$D/pf" "smtpd_milters = $sock"
  postfix -c "$D/pf/conf" reload >/dev/null 2>&1
  sleep 1
  smtp-source -s 10 -l 4096 -m 50 -f s@example.org -t "$(rcpt "$1")" "127.0.0.1:$PORT" ||
    fail "smtp-source (warm-up $1)"
}
rcpt() { case $1 in s|c) echo a@virt.dom ;; *) echo x@other.test ;; esac; }

# rate KIND - msg/s accepted by Postfix (smtp-source wall time)
rate() {
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s 10 -l 4096 -m "$N" -f s@example.org -t "$(rcpt "$1")" "127.0.0.1:$PORT" ||
    fail "smtp-source ($1)"
  t1=$(date +%s.%N)
  echo "$N / ($t1 - $t0)" | bc -l
}

median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
# CPU ticks (user + system, all threads) of a milter so far; 0 for (a)
hz=$(getconf CLK_TCK)
cpu_ticks() {
  local pid
  eval "pid=\${PID_$1:-}"
  [ -n "$pid" ] || { echo 0; return; }
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat"
}
order="a m b s c"
R_a=() R_m=() R_b=() R_s=() R_c=() U_m=() U_b=() U_s=() U_c=()
for round in $(seq 1 "$ROUNDS"); do
  for k in $order; do
    use "$k"
    t0=$(cpu_ticks "$k")
    r=$(rate "$k")
    t1=$(cpu_ticks "$k")
    eval "R_$k+=(\"\$r\")"
    # the milter's CPU time per message, microseconds
    [ "$k" = a ] || eval "U_$k+=(\"$(echo "scale=1; ($t1 - $t0) * 1000000 / $hz / $N" | bc)\")"
  done
  order="${order#* } ${order%% *}"      # rotate: a m b s c -> m b s c a
done
a=$(median "${R_a[@]}"); m=$(median "${R_m[@]}"); b=$(median "${R_b[@]}")
s=$(median "${R_s[@]}"); c=$(median "${R_c[@]}")

# trace KIND - strace -c the milter of run KIND over TRACE messages:
# prints "SYSCALLS_PER_MSG FSYNCS_PER_MSG"
trace() {
  local pid out st
  eval "pid=\$PID_$1"
  use "$1"
  out=$D/strace.$1
  strace -f -c -S calls -o "$out" -p "$pid" 2>"$D/strace.$1.err" &
  st=$!
  sleep 1                                  # attached (strace prints nothing when it is)
  smtp-source -s 10 -l 4096 -m "$TRACE" -f s@example.org -t "$(rcpt "$1")" \
    "127.0.0.1:$PORT" || fail "smtp-source (trace $1)"
  sleep 0.5
  kill -INT "$st"; wait "$st" 2>/dev/null
  awk -v n="$TRACE" '
    $NF == "total" { total = $4 }
    $NF == "fsync" || $NF == "fdatasync" { fs += $4 }
    END { printf "%.1f %.2f\n", total / n, fs / n }' "$out"
}
for k in m b s c; do
  read -r sc fs < <(trace "$k")
  eval "SC_$k=\$sc FS_$k=\$fs"
done
# one table: system calls per message by call, for the four traced milters
awk -v n="$TRACE" '
  FNR == 1 { k = FILENAME; sub(/.*strace\./, "", k) }
  $NF != "total" && $4 ~ /^[0-9]+$/ && $NF ~ /^[a-z_0-9]+$/ { c[$NF, k] = $4; seen[$NF] = 1 }
  END {
    printf "system calls per message (strace -c, %d messages):\n", n
    printf "  %-18s %8s %8s %8s %8s\n", "call", "m", "b", "s", "c"
    for (x in seen)
      printf "  %-18s %8.2f %8.2f %8.2f %8.2f\n", x, c[x, "m"] / n, c[x, "b"] / n,
        c[x, "s"] / n, c[x, "c"] / n | "sort -k5 -g -r"
  }' "$D/strace.m" "$D/strace.b" "$D/strace.s" "$D/strace.c"
echo

held=$(find "$D/spool/acme/new" -type f | wc -l)
stored=$(find "$D/peer-maildir/new" -type f | wc -l)
printf '(a) postfix, no milter:       %8.1f msg/s\n' "$a"
printf '(m) minimal milter:           %8.1f msg/s  m/a = %.3f\n' "$m" "$(echo "$m / $a" | bc -l)"
printf '(b) autoturn, nothing held:   %8.1f msg/s  b/m = %.3f (target >= 0.97)  b/a = %.3f\n' \
  "$b" "$(echo "$b / $m" | bc -l)" "$(echo "$b / $a" | bc -l)"
printf '(s) minimal storing milter:   %8.1f msg/s  s/a = %.3f\n' "$s" "$(echo "$s / $a" | bc -l)"
printf '(c) autoturn, all held:       %8.1f msg/s  c/s = %.3f (target >= 1.0)  c/b = %.3f (target >= 1.0)\n' \
  "$c" "$(echo "$c / $s" | bc -l)" "$(echo "$c / $b" | bc -l)"
echo "messages: $N per run, 10 sessions, 4 KiB, median of $ROUNDS rounds (order rotated); stored: autoturn $held, storing peer $stored"
printf 'rounds (msg/s): a=%s  m=%s  b=%s  s=%s  c=%s\n' "${R_a[*]}" "${R_m[*]}" "${R_b[*]}" \
  "${R_s[*]}" "${R_c[*]}"
printf 'milter CPU per message (us, user + system, median): m %s  b %s  s %s  c %s\n' \
  "$(median "${U_m[@]}")" "$(median "${U_b[@]}")" "$(median "${U_s[@]}")" "$(median "${U_c[@]}")"
echo "per message, strace -c over $TRACE messages (syscalls, fsyncs):" \
  "m $SC_m $FS_m; b $SC_b $FS_b; s $SC_s $FS_s; c $SC_c $FS_c"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
ratio milter "msg/s, nothing held" "$b" msg/s "minimal milter" "$m" ">=0.97" || fail "ratio"
ratio milter "msg/s, all held" "$c" msg/s "minimal storing milter" "$s" ">=1.0" || fail "ratio"
ratio milter "msg/s, all held" "$c" msg/s "autoturn, nothing held" "$b" ">=1.0" || fail "ratio"
ratio milter "msg/s, nothing held" "$b" msg/s "postfix, no milter" "$a" - || fail "ratio"
ratio milter "msg/s, minimal milter" "$m" msg/s "postfix, no milter" "$a" - || fail "ratio"
# CPU time is counted in ticks (1/CLK_TCK s): a short run (QUICK=1) may see
# none for a peer, and then there is no ratio to print
if [ "$(echo "$(median "${U_m[@]}") > 0 && $(median "${U_s[@]}") > 0" | bc)" = 1 ]; then
  ratio milter "milter CPU per message, nothing held" "$(median "${U_b[@]}")" us "minimal milter" \
    "$(median "${U_m[@]}")" - || fail "ratio"
  ratio milter "milter CPU per message, all held" "$(median "${U_c[@]}")" us \
    "minimal storing milter" "$(median "${U_s[@]}")" - || fail "ratio"
else
  echo "milter CPU per message: too few clock ticks over $N messages to compare"
fi
ratio milter "syscalls per held message" "$SC_c" calls "minimal storing milter" "$SC_s" - ||
  fail "ratio"
ratio milter "fsyncs per held message" "$FS_c" calls "minimal storing milter" "$FS_s" - ||
  fail "ratio"
