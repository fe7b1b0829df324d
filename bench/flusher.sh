#!/bin/bash
# SPDX-License-Identifier: ISC
# flusher.sh - how fast does autoturn-flusher drain a customer's spool? One
# run, everything on loopback, one smtp-sink (no dump files) as the
# customer's server for all three senders:
#   autoturn  10,000 held 4 KiB messages of one customer, drained by
#             "autoturnctl flush CUSTOMER --wait" (one connection);
#   postfix   the same 10,000 messages held in a private Postfix's deferred
#             queue for a fast_flush_domains domain (first routed to a closed
#             port so that they defer), then routed to the sink and released
#             by ETRN: timed from the ETRN until the queue is empty;
#   raw       smtp-source -s 10 -l 4096 -m 10000 straight into the sink: the
#             limit.
# Then the latency from a trigger (a FLUSH control request, no wait) to the
# first RCPT at a second smtp-sink run with -v, whose stderr is time-stamped
# on arrival by the measuring script: median (and max) of 20.
# Prints msg/s, the ratios and the latency.
# Targets: autoturn >= 2 x postfix, >= 0.5 x raw; latency median < 50 ms.
#
# Usage: bench/flusher.sh         (as root: the flusher and smtp-sink run as nobody)
#   BUILDDIR   default build/release (RelWithDebInfo; targets built if missing)
#   MESSAGES   default 10000
#   KEEP=1     keep the work directory (logs) and print its name
#   QUICK=1    MESSAGES 500 unless set: checks the harness, measures nothing
#              worth keeping
# Ends with RATIO lines (bench/ratio.sh, format in bench/all).
# Never run by the test suite.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILDDIR:-$root/build/release}
if [ "${QUICK:-0}" = 1 ]; then nmsg=${MESSAGES:-500}; else nmsg=${MESSAGES:-10000}; fi
. "$here/ratio.sh"
flusher=$build/flusher/autoturn-flusher
ctl=$build/ctl/autoturnctl
spool_put=$build/tests/spool_put

say() { echo "flusher.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (a private Postfix; the flusher switches to nobody)"
command -v smtp-sink >/dev/null && command -v smtp-source >/dev/null && command -v postfix >/dev/null ||
  die "needs postfix, smtp-sink and smtp-source (Debian package postfix)"

# --- build ---
if [ ! -x "$flusher" ] || [ ! -x "$ctl" ] || [ ! -x "$spool_put" ]; then
  say "building into $build"
  [ -f "$build/CMakeCache.txt" ] ||
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j2 --target autoturn-flusher autoturnctl spool_put >/dev/null
fi

# --- processes we start, and only those, are stopped at exit ---
work=$(mktemp -d /tmp/bench_flusher.XXXXXX)
pids=""
pf=$work/pf
cleanup() {
  local p
  [ -d "$pf/conf" ] && postfix -c "$pf/conf" stop >/dev/null 2>&1 || true
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$work"
. "$root/tests/integration/lib/postfix.sh"    # pf_new, pf_set, free_port, wait_port

now() { date +%s.%N; }
held() { find "$work/spool/bench/new" "$work/spool/bench/cur" -type f 2>/dev/null | wc -l; }

# --- the sink (one for all three senders) ---
ps_=$(free_port)
smtp-sink -u nobody -m 1000 "127.0.0.1:$ps_" 1024 >"$work/sink.log" 2>&1 &
pids="$pids $!"
wait_port 127.0.0.1 "$ps_" || die "smtp-sink did not start"

# --- a 4 KiB message ---
python3 - "$work/msg" <<'PY'
import sys
head = (b'From: <s@example.org>\r\nTo: <u@bench.example>\r\nSubject: bench\r\n'
        b'Message-ID: <bench@example.org>\r\n\r\n')
line = b'x' * 70 + b'\r\n'
body = line * ((4096 - len(head)) // len(line))
open(sys.argv[1], 'wb').write(head + body + b'x' * (4096 - len(head) - len(body) - 2) + b'\r\n')
PY

# --- autoturn-flusher ---
mkdir -p "$work/spool" "$work/run"
chown nobody "$work/spool"
printf 'customer bench\n    domain bench.example\n    delivery host 127.0.0.1:%s\n    tls none\n' "$ps_" \
  >"$work/customers"
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
}
CONF
say "holding $nmsg messages of 4 KiB"
t0=$(now)
for i in $(seq 1 "$nmsg"); do
  "$spool_put" "$work/spool" bench s@example.org u@bench.example <"$work/msg" >/dev/null
done
chown -R nobody "$work/spool"
say "held in $(echo "$(now) - $t0" | bc) s"
"$flusher" -f -c "$work/autoturn.conf" 2>"$work/flusher.log" &
pids="$pids $!"
for i in $(seq 1 100); do grep -q 'started: control' "$work/flusher.log" && break; sleep 0.1; done
t0=$(now)
"$ctl" -c "$work/autoturn.conf" flush bench --wait >"$work/flush.out" 2>&1 || true
t1=$(now)
grep -q "delivered $nmsg, deferred 0, bounced 0" "$work/flush.out" ||
  die "autoturn flush: $(tail -2 "$work/flush.out")"
[ "$(held)" = 0 ] || die "autoturn: $(held) still held"
t_at=$(echo "$t1 - $t0" | bc)

# --- raw smtp-source -> smtp-sink ---
t0=$(now)
smtp-source -s 10 -l 4096 -m "$nmsg" -f s@example.org -t u@bench.example "127.0.0.1:$ps_"
t1=$(now)
t_raw=$(echo "$t1 - $t0" | bc)

# --- Postfix: defer 10,000 for a fast_flush domain, then ETRN ---
pp=$(free_port) closed=$(free_port)
pf_new "$pf" "$pp"
pf_set "$pf" "relay_domains = bench.example" "fast_flush_domains = \$relay_domains" \
  "transport_maps = inline:{ bench.example=smtp:[127.0.0.1]:$closed }" \
  "smtp_connect_timeout = 1s" \
  "queue_run_delay = 1h" "minimal_backoff_time = 1h" "maximal_backoff_time = 2h" >/dev/null
postfix -c "$pf/conf" check && postfix -c "$pf/conf" start >/dev/null 2>&1 || die "Postfix did not start"
wait_port 127.0.0.1 "$pp" || die "Postfix smtpd not listening"
say "injecting $nmsg messages into Postfix (they defer: port $closed is closed)"
smtp-source -s 10 -l 4096 -m "$nmsg" -f s@example.org -t u@bench.example "127.0.0.1:$pp"
for i in $(seq 1 1200); do
  n=$(find "$pf/queue/deferred" -type f | wc -l)
  [ "$n" -ge "$nmsg" ] && break
  sleep 0.5
done
[ "$n" -ge "$nmsg" ] || die "Postfix: only $n of $nmsg deferred"
pf_set "$pf" "transport_maps = inline:{ bench.example=smtp:[127.0.0.1]:$ps_ }"
postfix -c "$pf/conf" reload >/dev/null 2>&1
sleep 2
t0=$(now)
python3 - "$pp" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.ehlo("etrn.bench.test")
code, text = s.docmd("ETRN", "bench.example")
s.quit()
if code != 250:
    sys.exit("ETRN: %d %s" % (code, text.decode()))
PY
while [ "$(pf_queue_count "$pf")" -gt 0 ]; do
  sleep 0.05
  [ "$(echo "$(now) - $t0 > 600" | bc)" = 1 ] && die "Postfix: $(pf_queue_count "$pf") left after 600 s"
done
t1=$(now)
t_pf=$(echo "$t1 - $t0" | bc)
sent=$(grep -c "relay=127.0.0.1\[127.0.0.1\]:$ps_.*status=sent" "$pf/log/maillog" || true)
[ "$sent" -ge "$nmsg" ] || die "Postfix: $sent of $nmsg sent to the sink"
postfix -c "$pf/conf" stop >/dev/null 2>&1 || true

# --- latency: FLUSH request -> first RCPT at a second smtp-sink (-v) ---
pl=$(free_port)
printf 'customer lat\n    domain lat.example\n    delivery host 127.0.0.1:%s\n    tls none\n' "$pl" \
  >>"$work/customers"
"$ctl" compile "$work/customers" "$work/customers.cdb.new" >/dev/null
chmod 644 "$work/customers.cdb.new"
mv "$work/customers.cdb.new" "$work/customers.cdb"
sleep 1.5    # customers { check_interval } defaults to 1 s
lat=$(python3 - "$pl" "$work" "$spool_put" <<'PY'
import os, pwd, socket, subprocess, sys, threading, time
port, work, spool_put = sys.argv[1], sys.argv[2], sys.argv[3]
# a real smtp-sink; -v logs each command to stderr, stamped here on arrival
sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-v", "127.0.0.1:" + port, "16"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
rcpts, cond = [], threading.Condition()
def reader():
    for line in sink.stderr:
        if b"RCPT TO:" in line:
            with cond:
                rcpts.append(time.time()); cond.notify()
threading.Thread(target=reader, daemon=True).start()
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(port)), 1).close(); break
    except OSError:
        time.sleep(0.05)
time.sleep(0.2)
nobody = pwd.getpwnam("nobody").pw_uid
def request(line):
    s = socket.socket(socket.AF_UNIX)
    s.connect(work + "/run/flusher.sock")
    s.sendall(line.encode() + b"\n")
    data = b""
    while True:                                     # the server closes after OK/ERR
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    return data.decode()
msg = open(work + "/msg", "rb").read()
out = []
for i in range(20):
    subprocess.run([spool_put, work + "/spool", "lat", "s@example.org", "u@lat.example"],
                   input=msg, stdout=subprocess.DEVNULL, check=True)
    for dp, dn, fn in os.walk(work + "/spool/lat"):
        for n in dn + fn:
            os.chown(os.path.join(dp, n), nobody, -1)
    os.chown(work + "/spool/lat", nobody, -1)
    with cond:
        seen = len(rcpts)
    t0 = time.time()
    reply = request("FLUSH customer=lat reason=bench")
    with cond:
        cond.wait_for(lambda: len(rcpts) > seen, timeout=10)
        if len(rcpts) <= seen:
            sys.exit("no RCPT after FLUSH (%s)" % reply.strip())
        out.append((rcpts[seen] - t0) * 1000)
    while "running=0" not in request("STATUS"):     # the flush is done
        time.sleep(0.01)
sink.terminate(); sink.wait()
out.sort()
print("%.1f %.1f %.1f" % ((out[9] + out[10]) / 2, out[0], out[-1]))
PY
) || die "latency: $lat"

# --- the table ---
awk -v n="$nmsg" -v a="$t_at" -v p="$t_pf" -v r="$t_raw" -v lat="$lat" '
  BEGIN {
    split(lat, l, " ")
    printf "%-34s %10s %10s\n", "sender (" n " x 4 KiB -> smtp-sink)", "seconds", "msg/s"
    printf "%-34s %10.2f %10.0f\n", "autoturn-flusher (1 connection)", a, n / a
    printf "%-34s %10.2f %10.0f\n", "postfix fast flush (ETRN)", p, n / p
    printf "%-34s %10.2f %10.0f\n", "raw smtp-source -s 10", r, n / r
    printf "\nautoturn / postfix = %.2f (target >= 2)\n", p / a
    printf "autoturn / raw     = %.2f (target >= 0.5)\n", r / a
    printf "latency FLUSH -> first RCPT at smtp-sink: median %.1f ms (min %.1f, max %.1f; 20 runs; target < 50 ms)\n", l[1], l[2], l[3]
  }'
grep -Ei "warning|error|fatal" "$work/flusher.log" | head -5 >&2 || true

rate() { echo "$nmsg / $1" | bc -l; }
echo
ratio flusher "drain $nmsg x 4 KiB, msg/s" "$(rate "$t_at")" msg/s "postfix ETRN fast flush" "$(rate "$t_pf")" ">=2"
ratio flusher "drain $nmsg x 4 KiB, msg/s" "$(rate "$t_at")" msg/s "raw smtp-source -s 10" "$(rate "$t_raw")" ">=0.5"
ratio flusher "FLUSH to first RCPT, median of 20" "${lat%% *}" ms budget 50 "<1"
