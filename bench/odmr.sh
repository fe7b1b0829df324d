#!/bin/bash
# SPDX-License-Identifier: ISC
# odmr.sh - what does an ODMR turnaround (RFC 2645) cost against a direct
# flush? One run, everything on loopback, one autoturn-flusher and one
# smtp-sink (no dump files) standing in for the customer's mail server:
#   direct  10,000 held 4 KiB messages of customer acme drained by
#           "autoturnctl flush acme --wait": the flusher connects to the
#           sink itself (delivery host = the sink);
#   odmr    the same 10,000 messages drained through the flusher's ODMR
#           listener by Debian's fetchmail as the customer's client
#           (protocol ODMR, AUTH CRAM-MD5, ATRN; smtphost = the same sink):
#           after "250 OK now reversing the connection" fetchmail copies
#           bytes between the flusher and the sink.
#   odmr+quickack  (no target) the same as odmr, with the customer's host
#           tuned: its loopback route carries "quickack 1" (see below, at
#           "The informational variants");
#   odmr+nodelay  (no target, only when cc is present) the same fetchmail
#           with TCP_NODELAY set on its sockets by an LD_PRELOAD shim.
# The whole bench runs in a private network namespace of its own (unshare
# -n, loopback only), so that changing the loopback route touches nothing
# else on the machine.
# Each drain is timed from the trigger (starting autoturnctl or fetchmail)
# to an empty spool (the process's exit, then the spool checked empty), and
# must log "customer=acme: flush done: delivered=N, deferred=0, bounced=0".
# ROUNDS rounds (default 3) of every variant, interleaved, the order
# rotated each round; medians reported. Also reported, without a target:
# CPU seconds of fetchmail (user+sys, /usr/bin/time) and of the flusher (its
# process and the reaped flush/session children, from /proc) per drain.
# Target: odmr >= 0.9 x direct (fetchmail's byte copying is the expected
# limit).
#
# The messages are stored once through the real spool API (tests/spool_put)
# into a staging spool; before every drain the staged files are copied into
# acme's new/ (a maildir: a finished file in new/ is a held message) and
# synced to disk, so that filling the spool is neither timed nor repeated
# through 60,000 forks.
#
# Usage: bench/odmr.sh         (as root: the flusher and smtp-sink run as nobody)
#   BUILDDIR   default build/release (RelWithDebInfo; the three targets are
#              brought up to date first)
#   MESSAGES   default 10000
#   ROUNDS     default 3
#   KEEP=1     keep the work directory (logs) and print its name
#   QUICK=1    MESSAGES 500 unless set: checks the harness, measures nothing
#              worth keeping
# Ends with RATIO lines (bench/ratio.sh, format in bench/all): odmr against
# direct (target >= 0.9), odmr+quickack and odmr+nodelay against direct
# without a target.
# Never run by the test suite.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILDDIR:-$root/build/release}
if [ "${QUICK:-0}" = 1 ]; then nmsg=${MESSAGES:-500}; else nmsg=${MESSAGES:-10000}; fi
rounds=${ROUNDS:-3}
. "$here/ratio.sh"
flusher=$build/flusher/autoturn-flusher
ctl=$build/ctl/autoturnctl
spool_put=$build/tests/spool_put

say() { echo "odmr.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (the flusher and smtp-sink switch to nobody)"
command -v smtp-sink >/dev/null || die "needs smtp-sink (Debian package postfix)"
command -v fetchmail >/dev/null || die "needs fetchmail (Debian package fetchmail)"
[ -x /usr/bin/time ] || die "needs /usr/bin/time (Debian package time)"
command -v ip >/dev/null || die "needs ip (Debian package iproute2)"
if [ -z "${AUTOTURN_BENCH_NETNS:-}" ]; then   # a private network namespace (see above)
  AUTOTURN_BENCH_NETNS=1 exec unshare -n -- "$0" "$@"
fi
ip link set lo up || die "cannot bring up lo in the private network namespace"
case $rounds in [1-9]) ;; *) die "ROUNDS must be 1 to 9" ;; esac

# --- build (incremental: a no-op when up to date; ODMR is recent) ---
[ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target autoturn-flusher autoturnctl spool_put >/dev/null ||
  die "build failed in $build"

# --- processes we start, and only those, are stopped at exit ---
work=$(mktemp -d /tmp/bench_odmr.XXXXXX)
pids=""
cleanup() {
  local p
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$work"
. "$root/tests/integration/lib/postfix.sh"    # free_port, wait_port

now() { date +%s.%N; }
held() { find "$work/spool/acme/new" "$work/spool/acme/cur" -type f 2>/dev/null | wc -l; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
hz=$(getconf CLK_TCK)
# CPU ticks of the flusher: its own and its reaped children's (flushes, ODMR sessions)
fl_cpu() { awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$fl_pid/stat"; }
fl_children() { pgrep -P "$fl_pid" | wc -l; }

# --- the sink (customer's server for both variants, same options) ---
ps_=$(free_port)
smtp-sink -u nobody -m 1000 "127.0.0.1:$ps_" 1024 >"$work/sink.log" 2>&1 &
pids="$pids $!"
wait_port 127.0.0.1 "$ps_" || die "smtp-sink did not start"

# --- a 4 KiB message (as in bench/flusher.sh) ---
python3 - "$work/msg" <<'PY'
import sys
head = (b'From: <s@example.org>\r\nTo: <u@virt.dom>\r\nSubject: bench\r\n'
        b'Message-ID: <bench@example.org>\r\n\r\n')
line = b'x' * 70 + b'\r\n'
body = line * ((4096 - len(head)) // len(line))
open(sys.argv[1], 'wb').write(head + body + b'x' * (4096 - len(head) - len(body) - 2) + b'\r\n')
PY

# --- the flusher, with ODMR ---
po=$(free_port)
password=bench-odmr-secret
secret=$(printf '%s' "$password" | "$ctl" secret) || die "autoturnctl secret failed"
mkdir -p "$work/spool" "$work/run"
chown nobody "$work/spool"
# ODMR sessions run as their own user before AUTH (odmr.user, autoturn-flusher(8))
id autoturn-odmr >/dev/null 2>&1 ||
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin autoturn-odmr
cat >"$work/customers" <<SRC
customer acme
    domain virt.dom
    delivery host 127.0.0.1:$ps_
    tls none
    trigger atrn
    secret $secret
SRC
"$ctl" compile "$work/customers" "$work/customers.cdb" >/dev/null
chmod 644 "$work/customers.cdb"
cat >"$work/autoturn.conf" <<CONF
log { destination = stderr
      level = info }
spool { directory = "$work/spool" }
customers { table = "$work/customers.cdb" }
flusher {
    control = "unix:$work/run/flusher.sock:0660"
    user = nobody
    myhostname = flusher.bench.test
    sendmail_command = "/bin/true"
    odmr {
        enable = true
        listen = { "inet:127.0.0.1:$po" }
        auth_delay = 0s
    }
}
CONF

# --- fetchmail as acme's ODMR client ---
fm=$work/fetchmail
mkdir -m 0700 "$fm"
printf 'poll 127.0.0.1 protocol ODMR service %s user "acme" password "%s" fetchdomains virt.dom smtphost 127.0.0.1/%s\n' \
  "$po" "$password" "$ps_" >"$fm/rc"
chmod 0600 "$fm/rc"

# --- hold the messages once, in a staging spool ---
mkdir -m 0700 "$work/stage"
say "storing $nmsg messages of 4 KiB (staging spool)"
t0=$(now)
for _ in $(seq 1 "$nmsg"); do
  "$spool_put" "$work/stage" acme s@example.org u@virt.dom <"$work/msg" >/dev/null
done
say "stored in $(echo "$(now) - $t0" | bc) s"
[ "$(find "$work/stage/acme/new" -type f | wc -l)" = "$nmsg" ] || die "staging spool: not $nmsg files"
chown -R nobody "$work/stage"
for d in "" /tmp /new /cur /bad; do install -d -m 0700 -o nobody "$work/spool/acme$d"; done

"$flusher" -f -c "$work/autoturn.conf" 2>"$work/flusher.log" &
fl_pid=$!
pids="$pids $fl_pid"
for _ in $(seq 1 100); do grep -q 'started: control' "$work/flusher.log" && break; sleep 0.1; done
grep -q 'started: control' "$work/flusher.log" || die "flusher did not start: $(tail -3 "$work/flusher.log")"
grep -q "odmr: listening on inet:127.0.0.1:$po" "$work/flusher.log" ||
  die "flusher: no ODMR listener: $(grep -i odmr "$work/flusher.log" | tail -3)"
base_children=$(fl_children)

fill() {   # (owned by nobody already: a sweep never meets a root-owned file)
  cp -a "$work/stage/acme/new/." "$work/spool/acme/new/"
  sync
  [ "$(held)" = "$nmsg" ] || die "fill: $(held) held, not $nmsg"
}

# after a drain: the child reaped (its CPU counted), the spool empty, the log line
settle() {   # VARIANT: sets t_end
  local what=$1 _
  for _ in $(seq 1 600); do [ "$(held)" = 0 ] && break; sleep 0.05; done
  t_end=$(now)
  [ "$(held)" = 0 ] || die "$what: $(held) still held"
  for _ in $(seq 1 200); do [ "$(fl_children)" -le "$base_children" ] && break; sleep 0.05; done
  done_lines=$((done_lines + 1))
  [ "$(grep -c "customer=acme: flush done: delivered=$nmsg, deferred=0, bounced=0" "$work/flusher.log")" = "$done_lines" ] ||
    die "$what: no 'flush done: delivered=$nmsg' line: $(grep 'customer=acme' "$work/flusher.log" | tail -3)"
}

run_direct() {
  local t0 t1 c0
  fill
  c0=$(fl_cpu)
  t0=$(now)
  "$ctl" -c "$work/autoturn.conf" flush acme --wait >"$work/flush.out" 2>&1 ||
    die "direct: autoturnctl: $(tail -2 "$work/flush.out")"
  settle direct; t1=$t_end
  grep -q "delivered $nmsg, deferred 0, bounced 0" "$work/flush.out" ||
    die "direct: $(tail -2 "$work/flush.out")"
  t_direct="$t_direct $(echo "$t1 - $t0" | bc)"
  cpu_direct_fl="$cpu_direct_fl $(echo "scale=3; ($(fl_cpu) - $c0) / $hz" | bc)"
}

run_odmr() {   # VARIANT (odmr | quickack | nodelay)
  local v=$1 t0 t1 c0 rc=0 pre=""
  [ "$v" = nodelay ] && pre=$work/nodelay.so
  fill
  [ "$v" = quickack ] && lo_route "quickack 1"
  c0=$(fl_cpu)
  t0=$(now)
  FETCHMAILHOME=$fm LD_PRELOAD=$pre timeout $((600 + nmsg / 5)) \
    /usr/bin/time -f '%U %S' -o "$work/fm.time" fetchmail -f "$fm/rc" >"$work/fm.out" 2>&1 || rc=$?
  [ "$v" = quickack ] && lo_route ""
  [ "$rc" = 0 ] || die "$v: fetchmail exit $rc: $(tail -3 "$work/fm.out")"
  settle "$v"; t1=$t_end
  eval "t_$v=\"\$t_$v $(echo "$t1 - $t0" | bc)\""
  eval "cpu_${v}_fl=\"\$cpu_${v}_fl $(echo "scale=3; ($(fl_cpu) - $c0) / $hz" | bc)\""
  eval "cpu_${v}_fm=\"\$cpu_${v}_fm $(awk '{ printf "%.2f", $1 + $2 }' "$work/fm.time")\""
}

# The informational variants. Debian's fetchmail copies the turned-around
# session one line per write(2) with Nagle on: a line written while an
# earlier one is unacknowledged waits for the ACK. The flusher acknowledges
# at once on a turned-around connection (TCP_QUICKACK), but the customer's
# server, reading a body it will not answer until the final dot, delays its
# ACK (about 40 ms on Linux), so every message waits once.
#   quickack  the customer's host is told to acknowledge at once: its
#             loopback route gets "quickack 1" (ip-route(8)), here in the
#             bench's own network namespace, for this variant only;
#   nodelay   fetchmail with TCP_NODELAY set on its two TCP sockets by an
#             LD_PRELOAD shim around connect(2): what the line-by-line
#             copying costs without Nagle at all.
lo_route() {   # "" or "quickack 1"
  local dst
  for dst in 127.0.0.0/8 127.0.0.1; do
    # shellcheck disable=SC2086  # $1 is zero or two words
    ip route change local "$dst" dev lo table local proto kernel scope host src 127.0.0.1 $1 ||
      die "ip route change local $dst $1 failed"
  done
}
variants="direct odmr quickack"
if command -v cc >/dev/null; then
  cat >"$work/nodelay.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>
int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    int one = 1;

    if (real == NULL)
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return real(fd, sa, len);
}
C
  cc -shared -fPIC -O2 -o "$work/nodelay.so" "$work/nodelay.c" -ldl && variants="$variants nodelay"
fi
[ "$variants" = "direct odmr quickack" ] && say "no cc or the shim did not build: the fetchmail + TCP_NODELAY variant is left out"

run_variant() { if [ "$1" = direct ]; then run_direct; else run_odmr "$1"; fi; }
last() { echo "$1" | awk '{ print $NF }'; }

done_lines=0
t_direct="" t_odmr="" t_quickack="" t_nodelay="" cpu_direct_fl="" cpu_odmr_fl="" cpu_odmr_fm=""
cpu_quickack_fl="" cpu_quickack_fm="" cpu_nodelay_fl="" cpu_nodelay_fm=""
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# interleaved, the order rotated every round
order=$variants
for r in $(seq 1 "$rounds"); do
  for v in $order; do run_variant "$v"; done
  say "round $r ($order): direct $(last "$t_direct") s, odmr $(last "$t_odmr") s, odmr+quickack $(last "$t_quickack") s${t_nodelay:+, odmr+nodelay $(last "$t_nodelay") s}"
  order="${order#* } ${order%% *}"
done
load=$(cut -d' ' -f1-3 /proc/loadavg)

# shellcheck disable=SC2086  # word splitting of the lists is intended
{
  md=$(median $t_direct); mo=$(median $t_odmr)
  mcd=$(median $cpu_direct_fl); mco=$(median $cpu_odmr_fl); mcf=$(median $cpu_odmr_fm)
  mq=$(median $t_quickack); mcq=$(median $cpu_quickack_fl); mcqf=$(median $cpu_quickack_fm)
  mn=-; mcn=-; mcnf=-
  if [ -n "$t_nodelay" ]; then
    mn=$(median $t_nodelay); mcn=$(median $cpu_nodelay_fl); mcnf=$(median $cpu_nodelay_fm)
  fi
}
awk -v n="$nmsg" -v r="$rounds" -v d="$md" -v o="$mo" -v q="$mq" -v nd="$mn" \
    -v td="$t_direct" -v to="$t_odmr" -v tq="$t_quickack" -v tn="$t_nodelay" \
    -v cd="$mcd" -v co="$mco" -v cf="$mcf" -v cq="$mcq" -v cqf="$mcqf" \
    -v cn="$mcn" -v cnf="$mcnf" -v load="$load" '
  BEGIN {
    printf "%-44s %9s %9s   %s\n", "drain " n " x 4 KiB -> smtp-sink, median of " r, "seconds", "msg/s", "all runs (s)"
    printf "%-44s %9.2f %9.0f  %s\n", "direct flush (autoturnctl flush --wait)", d, n / d, td
    printf "%-44s %9.2f %9.0f  %s\n", "ODMR (fetchmail -> smtp-sink)", o, n / o, to
    printf "%-44s %9.2f %9.0f  %s\n", "ODMR, customer route quickack 1", q, n / q, tq
    if (nd != "-")
      printf "%-44s %9.2f %9.0f  %s\n", "ODMR, fetchmail with TCP_NODELAY (shim)", nd, n / nd, tn
    printf "\nodmr / direct = %.3f (no target: the rate is fetchmail\047s)\n", d / o
    printf "odmr with the customer route quickack / direct = %.3f (no target)\n", d / q
    if (nd != "-")
      printf "odmr with TCP_NODELAY / direct = %.3f (no target)\n", d / nd
    printf "CPU s per drain (median): direct: flusher %.2f; odmr: flusher %.2f, fetchmail %.2f", cd, co, cf
    printf "; odmr+quickack: flusher %.2f, fetchmail %.2f", cq, cqf
    if (nd != "-")
      printf "; odmr+nodelay: flusher %.2f, fetchmail %.2f", cn, cnf
    printf "\nload average after: %s (shared machine: the figures are indicative)\n", load
  }'
grep -Ei "warning|error|fatal" "$work/flusher.log" | head -5 >&2 || true

rate() { echo "$nmsg / $1" | bc -l; }
permsg() { echo "$1 * 1000 / $nmsg" | bc -l; }     # CPU seconds per drain -> ms per message
echo
# the rate through stock fetchmail is fetchmail's and the customer's
# (docs/PERFORMANCE.md); what autoturn answers for is the flusher's CPU
# per message, against a direct flush
ratio odmr "flusher CPU per message, ODMR, stock fetchmail" "$(permsg "$mco")" ms \
  "direct flush" "$(permsg "$mcd")" "<=1.05"
ratio odmr "flusher CPU per message, ODMR, customer route quickack" "$(permsg "$mcq")" ms \
  "direct flush" "$(permsg "$mcd")" "-"
ratio odmr "drain $nmsg x 4 KiB, msg/s" "$(rate "$mo")" msg/s "direct flush" "$(rate "$md")" "-"
ratio odmr "drain $nmsg x 4 KiB, customer route quickack, msg/s" "$(rate "$mq")" msg/s "direct flush" "$(rate "$md")" "-"
if [ "$mn" != - ]; then
  ratio odmr "drain $nmsg x 4 KiB, fetchmail with TCP_NODELAY, msg/s" "$(rate "$mn")" msg/s "direct flush" "$(rate "$md")" "-"
fi
