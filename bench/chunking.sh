#!/bin/bash
# SPDX-License-Identifier: ISC
# chunking.sh - does BDAT (RFC 3030 CHUNKING) drain held mail faster than
# DATA? One run, everything on loopback: a private Postfix smtpd is the
# customer's server (it offers CHUNKING and PIPELINING; it queues every
# message as it would for real and discards it afterwards), and
# autoturn-flusher drains the same spool into it with "chunking = true"
# (BDAT) and "chunking = false" (DATA), alternately, ROUNDS times each:
#   small  MESSAGES x 4 KiB (BDAT goes right behind MAIL/RCPT: one round
#          trip per message instead of two)
#   large  LARGE x 1 MiB (BDAT after the envelope replies; no dot-stuffing
#          scan on either side)
# Prints the median msg/s of each, BDAT / DATA, and the CPU time per
# message of the flusher and of the customer's Postfix (which the
# machine's load changes less than the wall clock). The default of
# autoturn.conf's "chunking" is whichever is faster (docs/PERFORMANCE.md).
#
# Usage: bench/chunking.sh       (as root: Postfix; the flusher runs as nobody)
#   BUILDDIR   default build/release (targets built if missing)
#   MESSAGES   default 3000        LARGE   default 100        ROUNDS  default 3
#   KEEP=1     keep the work directory
#   QUICK=1    MESSAGES 200, LARGE 10, ROUNDS 1: checks the harness only
# Ends with RATIO lines (bench/ratio.sh, format in bench/all).
# Never run by the test suite.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILDDIR:-$root/build/release}
if [ "${QUICK:-0}" = 1 ]; then
  nsmall=${MESSAGES:-200} nlarge=${LARGE:-10} rounds=${ROUNDS:-1}
else
  nsmall=${MESSAGES:-3000} nlarge=${LARGE:-100} rounds=${ROUNDS:-3}
fi
. "$here/ratio.sh"
flusher=$build/flusher/autoturn-flusher
ctl=$build/ctl/autoturnctl
spool_put=$build/tests/spool_put

say() { echo "chunking.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (a private Postfix; the flusher switches to nobody)"
command -v postfix >/dev/null || die "needs postfix"
if [ ! -x "$flusher" ] || [ ! -x "$ctl" ] || [ ! -x "$spool_put" ]; then
  say "building into $build"
  [ -f "$build/CMakeCache.txt" ] ||
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j2 --target autoturn-flusher autoturnctl spool_put >/dev/null
fi

# --- processes we start, and only those, are stopped at exit ---
work=$(mktemp -d /tmp/bench_chunking.XXXXXX)
pf=$work/pf
fpid=""
cleanup() {
  [ -d "$pf/conf" ] && postfix -c "$pf/conf" stop >/dev/null 2>&1 || true
  [ -n "$fpid" ] && { kill -TERM "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null; } || true
  if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$work"
. "$root/tests/integration/lib/postfix.sh"    # pf_new, pf_set, free_port, wait_port

now() { date +%s.%N; }

# --- the customer's Postfix: queues everything, then discards it ---
pp=$(free_port)
pf_new "$pf" "$pp"
pf_set "$pf" "relay_domains = bench.example" "default_transport = discard" \
  "relay_transport = discard" "message_size_limit = 0" "smtpd_client_connection_count_limit = 0" \
  "smtpd_client_message_rate_limit = 0" >/dev/null
pf_start "$pf" >/dev/null 2>&1 || die "Postfix did not start"
wait_port 127.0.0.1 "$pp" || die "Postfix smtpd not listening"

# --- messages: 4 KiB and 1 MiB, with a few lines starting with '.' ---
python3 - "$work" <<'PY'
import sys
for name, size in (("small", 4096), ("large", 1 << 20)):
    head = (b'From: <s@example.org>\r\nTo: <u@bench.example>\r\nSubject: bench\r\n'
            b'Message-ID: <bench@example.org>\r\n\r\n')
    lines, n = [], len(head)
    i = 0
    while n < size - 80:
        line = (b'.' if i % 50 == 0 else b'') + b'%07d ' % i + b'x' * 60 + b'\r\n'
        lines.append(line)
        n += len(line)
        i += 1
    open(sys.argv[1] + "/" + name, "wb").write(head + b"".join(lines))
PY

# --- the flusher: one customer per size ---
mkdir -p "$work/spool" "$work/run"
chown nobody "$work/spool"
printf 'customer %s\n    domain %s.bench.example\n    delivery host 127.0.0.1:%s\n    tls none\n' \
  small small "$pp" large large "$pp" >"$work/customers"
"$ctl" compile "$work/customers" "$work/customers.cdb" >/dev/null
chmod 644 "$work/customers.cdb"
conf() {   # FILE CHUNKING
  cat >"$1" <<CONF
log { destination = stderr
      level = warning }
spool { directory = "$work/spool" }
customers { table = "$work/customers.cdb" }
flusher {
    control = "unix:$work/run/flusher.sock:0660"
    user = nobody
    myhostname = flusher.bench.test
    sendmail_command = "/bin/true"
    chunking = $2
}
CONF
}
conf "$work/bdat.conf" true
conf "$work/data.conf" false

# hold CUSTOMER N - N copies of the message: one through the spool API, the
# others copied under new names (holding is not what is measured)
hold() {
  local c=$1 n=$2 id
  id=$("$spool_put" "$work/spool" "$c" s@example.org "u@$c.bench.example" <"$work/$c")
  python3 - "$work/spool/$c/new" "$id" "$n" <<'PY'
import os, shutil, sys
new, sid, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sec, rest = sid.split(".", 1)
host = rest.split(".", 1)[1]
for i in range(1, n):
    shutil.copyfile(os.path.join(new, sid), os.path.join(new, "%d.M%06dP1Q%d.%s" % (int(sec) + 1, i % 1000000, i, host)))
PY
  chown -R nobody "$work/spool"
}

# pf_cpu - CPU seconds (user + system) used so far by the customer
# Postfix's processes: master's reaped children (cutime + cstime: smtpd and
# cleanup processes that exited) plus the live children's own
pf_cpu() {
  local master p sum
  master=$(tr -d ' ' <"$pf/queue/pid/master.pid")
  sum=$(awk '{ print $16 + $17 }' "/proc/$master/stat")
  for p in $(pgrep -P "$master"); do
    sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum / $(getconf CLK_TCK)" | bc -l
}

# drain MODE CUSTOMER N - "seconds flusher-cpu postfix-cpu" for one flush
# of N held messages (CPU seconds change less with the machine's load)
drain() {
  local mode=$1 c=$2 n=$3 t0 t1 i c0 c1 fcpu
  hold "$c" "$n"
  "$flusher" -f -c "$work/$mode.conf" 2>>"$work/flusher-$mode.log" &
  fpid=$!
  for i in $(seq 1 100); do [ -S "$work/run/flusher.sock" ] && break; sleep 0.05; done
  c0=$(pf_cpu)
  t0=$(now)
  "$ctl" -c "$work/$mode.conf" flush "$c" --wait >"$work/flush.out" 2>&1 || true
  t1=$(now)
  sleep 0.2                        # the flush child has been reaped: its CPU is in cutime
  fcpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' "/proc/$fpid/stat")
  c1=$(pf_cpu)
  grep -q "delivered $n, deferred 0, bounced 0" "$work/flush.out" ||
    die "$mode $c: $(tail -2 "$work/flush.out")"
  kill -TERM "$fpid"; wait "$fpid" 2>/dev/null || true; fpid=""
  rm -f "$work/run/flusher.sock"
  echo "$(echo "$t1 - $t0" | bc) $fcpu $(echo "$c1 - $c0" | bc -l)"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A t fc pc
for size in small large; do
  n=$nsmall; [ "$size" = large ] && n=$nlarge
  for r in $(seq 1 "$rounds"); do
    for mode in bdat data; do
      set -- $(drain "$mode" "$size" "$n")
      say "$size round $r $mode: $n messages in $1 s (CPU: flusher $2 s, Postfix $3 s)"
      t[$size.$mode]="${t[$size.$mode]:-} $1"
      fc[$size.$mode]="${fc[$size.$mode]:-} $2"
      pc[$size.$mode]="${pc[$size.$mode]:-} $3"
    done
  done
done
grep -q 'bdat=' "$pf/log/maillog" || die "Postfix never saw BDAT"

rate() { echo "$1 / $2" | bc -l; }
med() { printf '%s\n' $1 | median; }
printf '%-24s %10s %10s %6s   %-22s %-22s\n' "median of $rounds" "BDAT msg/s" "DATA msg/s" ratio \
  "flusher CPU ms/msg" "Postfix CPU ms/msg"
printf '%-24s %10s %10s %6s   %-22s %-22s\n' "" "" "" "" "BDAT / DATA" "BDAT / DATA"
for size in small large; do
  n=$nsmall; label="$nsmall x 4 KiB"
  [ "$size" = large ] && n=$nlarge label="$nlarge x 1 MiB"
  rb=$(rate "$n" "$(med "${t[$size.bdat]}")") rd=$(rate "$n" "$(med "${t[$size.data]}")")
  fb=$(echo "$(med "${fc[$size.bdat]}") * 1000 / $n" | bc -l) fd=$(echo "$(med "${fc[$size.data]}") * 1000 / $n" | bc -l)
  pb=$(echo "$(med "${pc[$size.bdat]}") * 1000 / $n" | bc -l) pd=$(echo "$(med "${pc[$size.data]}") * 1000 / $n" | bc -l)
  printf '%-24s %10.0f %10.0f %6.2f   %8.3f / %-11.3f %8.3f / %-11.3f\n' "$label" "$rb" "$rd" \
    "$(echo "$rb / $rd" | bc -l)" "$fb" "$fd" "$pb" "$pd"
  eval "r_$size=\"$rb $rd $fb $fd\""
done
echo
set -- $r_small
ratio chunking "drain $nsmall x 4 KiB into Postfix, BDAT" "$1" msg/s "DATA (chunking = false)" "$2" "-"
ratio chunking "flusher CPU per 4 KiB message, BDAT" "$3" ms "DATA (chunking = false)" "$4" "-"
set -- $r_large
ratio chunking "drain $nlarge x 1 MiB into Postfix, BDAT" "$1" msg/s "DATA (chunking = false)" "$2" "-"
ratio chunking "flusher CPU per 1 MiB message, BDAT" "$3" ms "DATA (chunking = false)" "$4" "-"
