#!/bin/bash
# SPDX-License-Identifier: ISC
# bench/killcampaign.sh - nothing lost when any process dies at any moment:
# a real private Postfix with autoturn-milter, autoturn-policyd and
# autoturn-flusher (wired as tests/e2e/lib.sh does), an smtp-sink as the
# customer's server on 127.0.0.2, numbered messages for the held domain
# sent into Postfix and recorded when Postfix answers 250 after DATA,
# flushes triggered again and again (a connect from the customer's
# address, ETRN, the Hello port, autoturnctl flush), and every 0-500 ms a
# kill -9 of one of: the milter, the flusher daemon, a flush process,
# the policy service (each daemon is started again at once). At the end:
# every daemon up, one clean flush, and a count per message at the
# customer's server: lost (accepted, never delivered, not held: must be
# 0), duplicated (delivered more than once; with the number of kills that
# hit a flush process while it had a session open with the customer's
# server), delivered though Postfix did not say 250 (the sender would have
# retried: a duplicate too), files left in tmp/ (and whether the sweep
# removes them with a short tmp_max_age) and in bad/.
#
# usage: bench/killcampaign.sh [--duration SECONDS] [--keep]
#   --duration  length of the kill phase (default 600)
#   --keep      keep the work directory (logs, spool, sink) and print it
# Environment: BUILDDIR (default build/release; built if needed).
# Needs root (private Postfix, daemons that switch to nobody). Not part of
# the test suite: it takes minutes. Last line: the one-line summary; exit
# status 0 when nothing was lost, 1 otherwise, 2 when it could not run.
set -u
duration=600 keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=${2:?}; shift 2 ;;
    --duration=*) duration=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    *) sed -n '20,27{s/^# \{0,1\}//;p}' "$0" >&2; exit 2 ;;
  esac
done
[[ $duration =~ ^[0-9]+$ ]] || { echo "killcampaign: --duration takes seconds" >&2; exit 2; }

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILDDIR=${BUILDDIR:-$SRCDIR/build/release}
if [ ! -x "$BUILDDIR/flusher/autoturn-flusher" ] || [ ! -x "$BUILDDIR/tests/spool_put" ]; then
  cmake -S "$SRCDIR" -B "$BUILDDIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
    cmake --build "$BUILDDIR" -j2 >/dev/null || { echo "killcampaign: build failed" >&2; exit 2; }
fi
AUTOTURNCTL=$BUILDDIR/ctl/autoturnctl
SPOOL_PUT=$BUILDDIR/tests/spool_put
export SRCDIR BUILDDIR AUTOTURNCTL SPOOL_PUT
E2E_KEEP=$keep
. "$SRCDIR/tests/e2e/lib.sh"
say() { echo "killcampaign: $*" >&2; }

# --- set-up: as tests/e2e/lib.sh, with triggers that are never rate-limited ---
e2e_init
KC=$D/kc
mkdir -p "$KC"
# ours_pids - every process started with this run's configuration (the
# daemons, also those the killer restarted, and their flush processes)
ours_pids() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "-c $D/autoturn.conf" && echo "${p#/proc/}"
  done
}
kc_cleanup() {
  local p
  touch "$KC/stop"
  for p in $(ours_pids); do kill -9 "$p" 2>/dev/null; done
  MT_PID= PD_PID= FL_PID=
  e2e_down
}
trap kc_cleanup EXIT
E2E_POLICYD="notify_interval = 0s"
E2E_FLUSHER="retry_interval = 0s
    max_flushes = 20"
E2E_RELAY="virt.dom"
e2e_config
sed -i "s|listen = { \"inet:127.0.0.1:$HELLO\" }|listen = { \"inet:127.0.0.1:$HELLO\" }\n        rate_interval = 0s|" \
  "$D/autoturn.conf"
e2e_customers <<SRC || { say "customer table"; exit 2; }
customer acme
    domain virt.dom .virt.dom
    address 127.0.0.2
    delivery connecting-ip
    port $PA
    tls none
    trigger connect etrn
SRC
e2e_up || { say "daemons and Postfix did not start"; exit 2; }
e2e_sink ACME 127.0.0.2 || exit 2
say "work directory $D; kill phase ${duration}s"

# --- daemons: supervised (restarted as soon as they die), and killed ---
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
# alive PID - a running process (a killed child not yet reaped is a zombie)
alive() {
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
launch() {    # NAME - start the daemon, pid into $KC/pid.NAME (no waiting)
  case $1 in
    flusher) rm -f "$D/run/flusher.sock"
             "$FLUSHER" -f -c "$D/autoturn.conf" >>"$D/flusher.log" 2>&1 & ;;
    policyd) "$POLICYD" -f -c "$D/autoturn.conf" 2>>"$D/policyd.log" & ;;
    milter)  rm -f "$D/run/milter.sock"
             "$MILTER" -f -c "$D/autoturn.conf" >>"$D/milter.log" 2>&1 & ;;
  esac
  echo $! >"$KC/pid.$1"
}
# supervise NAME - like a service manager's Restart=always, until stop
supervise() {
  local pid
  while [ ! -e "$KC/stop" ]; do
    pid=$(cat "$KC/pid.$1")
    if ! alive "$pid"; then
      wait "$pid" 2>/dev/null
      echo "$(date +%s.%N) $1" >>"$KC/restarts"
      launch "$1"
    fi
    sleep 0.1
  done
}
# killer - every 0-500 ms one of the four, at random (for "a flush
# process": one that runs, waiting up to 2 s for one; flush processes are
# found in the flusher's log, which also names those of a daemon killed
# since). A kill is "in session" when the flush process had an SMTP
# session open with the customer's server (its sockets in /proc/net/tcp).
# One process, no fork per kill: on a loaded machine that keeps the pace.
killer() {
  python3 - "$KC" "$D/flusher.log" "$PA" <<'PY'
import os, random, re, signal, socket, struct, sys, time
kc, log, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = re.compile(rb"customer=acme: flush started \(pid (\d+),")
pids, off = [], 0
def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
def children():
    global off
    with open(log, "rb") as f:
        f.seek(off)
        data = f.read()
    off += len(data)
    pids.extend(int(m) for m in started.findall(data))
    del pids[:-200]
    return [p for p in pids if alive(p)]
peer = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton("127.0.0.2"))[0], port)
def in_session(pid):
    try:
        inodes = {os.readlink("/proc/%d/fd/%s" % (pid, fd))[8:-1] for fd in os.listdir("/proc/%d/fd" % pid)}
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                c = line.split()
                if c[2] == peer and c[3] == "01" and c[9] in inodes:
                    return True
    except OSError:
        pass
    return False
with open(os.path.join(kc, "kills"), "a", buffering=1) as out:
    while not os.path.exists(os.path.join(kc, "stop")):
        time.sleep(random.uniform(0, 0.5))
        victim = random.choice(["milter", "flusher", "policyd", "child"])
        pid, during = None, 0
        if victim == "child":
            for _ in range(20):
                kids = children()
                if kids:
                    pid = random.choice(kids)
                    break
                time.sleep(0.1)
            if pid is None:
                continue
            during = int(in_session(pid))
        else:
            try:
                pid = int(open(os.path.join(kc, "pid." + victim)).read())
            except (OSError, ValueError):
                continue
        if not alive(pid):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
        out.write("%.6f %s %d %d\n" % (time.time(), victim, pid, during))
PY
}

# sender - numbered messages for a@virt.dom (every 5th also for
# b@sub.virt.dom), up to 10 per SMTP session; "N CODE" per message, CODE
# 250 = Postfix accepted it after DATA
sender() {
  python3 - "$SMTP" "$KC/stop" "$KC/sent" <<'PY'
import os, smtplib, sys
port, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
n = 0
with open(out, "w", buffering=1) as f:
    while not os.path.exists(stop):
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        except OSError:
            continue
        try:
            for _ in range(10):
                n += 1
                rcpts = ["a@virt.dom"] + (["b@sub.virt.dom"] if n % 5 == 0 else [])
                msg = ("From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: kc %d\r\n"
                       "Message-ID: <kc-%d@example.org>\r\n\r\nmessage %d\r\n" % (n, n, n)).encode()
                try:
                    s.sendmail("s@example.org", rcpts, msg)
                    f.write("%d 250\n" % n)
                except smtplib.SMTPResponseException as e:
                    f.write("%d %d\n" % (n, e.smtp_code))
                    break
                except smtplib.SMTPRecipientsRefused as e:
                    f.write("%d %d\n" % (n, list(e.recipients.values())[0][0]))
                    break
        except (OSError, smtplib.SMTPException):
            f.write("%d -1\n" % n)          # no reply after DATA: not accepted
        try:
            s.quit()
        except Exception:
            pass
PY
}

# triggers - a flush asked for again and again, every 0.2-1 s, each of
# the ways a customer or an admin has: its address connects to Postfix
# (AutoTURN through the policy service and the milter), ETRN, the Hello
# port, autoturnctl flush
triggers() {
  python3 - "$SMTP" "$HELLO" "$KC/stop" "$KC/triggers" "$AUTOTURNCTL" "$D/autoturn.conf" <<'PY'
import os, random, smtplib, socket, subprocess, sys, time
smtp, hello, stop, out, ctl, conf = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:]
with open(out, "w", buffering=1) as f:
    while not os.path.exists(stop):
        time.sleep(random.uniform(0.2, 1.0))
        how = random.choice(["connect", "etrn", "hello", "ctl"])
        f.write(how + "\n")
        try:
            if how == "ctl":
                subprocess.run([ctl, "-c", conf, "flush", "acme"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60)
            elif how == "hello":
                s = socket.create_connection(("127.0.0.1", hello), timeout=10,
                                             source_address=("127.0.0.2", 0))
                s.recv(1)
                s.close()
            else:
                s = smtplib.SMTP("127.0.0.1", smtp, timeout=30, source_address=("127.0.0.2", 0))
                s.ehlo("customer.example")
                if how == "etrn":
                    s.docmd("ETRN", "virt.dom")
                s.quit()
        except (OSError, smtplib.SMTPException, subprocess.SubprocessError):
            pass
PY
}

# --- the kill phase ---
echo "$FL_PID" >"$KC/pid.flusher"; echo "$PD_PID" >"$KC/pid.policyd"; echo "$MT_PID" >"$KC/pid.milter"
: >"$KC/kills"; : >"$KC/restarts"
supervise milter & SUP1=$!
supervise policyd & SUP2=$!
supervise flusher & SUP3=$!
sender & SENDER=$!
triggers & TRIGGERS=$!
killer & KILLER=$!
sleep "$duration"
touch "$KC/stop"
wait "$KILLER" "$TRIGGERS" "$SENDER" "$SUP1" "$SUP2" "$SUP3"
say "kill phase over; a clean flush"

# --- a clean end: every daemon up, Postfix's queue empty, one last flush ---
# (the supervisors ran in subshells: the daemons they started are not this
# shell's children; they wrote down the pids)
for name in milter policyd flusher; do
  alive "$(cat "$KC/pid.$name")" || launch "$name"
done
FL_PID=$(cat "$KC/pid.flusher") PD_PID=$(cat "$KC/pid.policyd") MT_PID=$(cat "$KC/pid.milter")
wait_for 60 test -S "$D/run/flusher.sock" && wait_for 60 test -S "$D/run/milter.sock" &&
  wait_port 127.0.0.1 "$POLICY" 60 || say "a daemon does not come up"
wait_for 300 eval '[ "$(pf_queue_count "$D/pf")" = 0 ]' || say "Postfix's queue is not empty"
for i in 1 2 3 4 5 6 7 8 9 10; do
  fl_idle "$D" acme
  [ "$(e2e_held acme)" = 0 ] && break
  e2e_ctl flush acme --wait >>"$KC/final-flush" 2>&1
done
fl_idle "$D" acme
tmp_left=$(find "$D/spool/acme/tmp" -type f 2>/dev/null | wc -l)
bad_left=$(find "$D/spool/acme/bad" -type f 2>/dev/null | wc -l)
held_left=$(e2e_held acme)

# files in tmp/: the sweep with a short tmp_max_age must remove them
swept=none
if [ "$tmp_left" -gt 0 ]; then
  kill "$FL_PID"; wait_gone "$FL_PID" 30; wait "$FL_PID" 2>/dev/null
  sed -i 's/^flusher {$/flusher {\n    tmp_max_age = 1s\n    sweep_interval = 1s/' "$D/autoturn.conf"
  launch flusher
  FL_PID=$(cat "$KC/pid.flusher")
  wait_for 60 eval '[ "$(find "$D/spool/acme/tmp" -type f | wc -l)" = 0 ]' && swept=all || swept=not-all
  sed -i '/^    tmp_max_age = 1s$/d; /^    sweep_interval = 1s$/d' "$D/autoturn.conf"
fi

# --- the count ---
python3 - "$KC/sent" "$D/sink-ACME" "$KC/kills" "$KC/triggers" "$duration" "$tmp_left" "$swept" \
  "$bad_left" "$held_left" "$KC/restarts" >"$KC/report" <<'PY'
import collections, os, re, sys
sent, sink, kills, trig, dur, tmp_left, swept, bad_left, held, restarts = sys.argv[1:11]
accepted, refused = set(), set()
for line in open(sent):
    n, code = line.split()
    (accepted if code == "250" else refused).add(int(n))
got = collections.Counter()
for f in os.listdir(sink):
    m = re.search(rb"^Message-ID: <kc-(\d+)@example.org>$", open(os.path.join(sink, f), "rb").read(), re.M)
    if m:
        got[int(m.group(1))] += 1
lost = sorted(n for n in accepted if got[n] == 0)
dups = {n: c - 1 for n, c in got.items() if c > 1}
unaccepted = sorted(n for n in refused if got[n] > 0)
k = collections.Counter()
during = 0
if os.path.exists(kills):
    for line in open(kills):
        _, victim, _, d = line.split()
        k[victim] += 1
        during += d == "1"
t = collections.Counter(l.strip() for l in open(trig)) if os.path.exists(trig) else {}
print("sent %d, accepted (250) %d, refused %d" % (len(accepted) + len(refused), len(accepted), len(refused)))
print("kills %d: milter %d, flusher %d, flush process %d (%d with a session open to the customer), policyd %d"
      % (sum(k.values()), k["milter"], k["flusher"], k["child"], during, k["policyd"]))
r = collections.Counter(l.split()[1] for l in open(restarts)) if os.path.exists(restarts) else {}
print("restarts %d: milter %d, flusher %d, policyd %d" % (sum(r.values()), r["milter"], r["flusher"], r["policyd"]))
print("triggers %d: connect %d, etrn %d, hello %d, autoturnctl %d"
      % (sum(t.values()), t["connect"], t["etrn"], t["hello"], t["ctl"]))
print("delivered: %d distinct accepted messages, %d deliveries in all" % (sum(1 for n in accepted if got[n]), sum(got.values())))
print("lost %d%s" % (len(lost), (": " + " ".join(map(str, lost[:20]))) if lost else ""))
print("duplicated %d messages (%d extra copies)" % (len(dups), sum(dups.values())))
print("delivered though not accepted (the sender retries: a duplicate) %d" % len(unaccepted))
print("left: held %s, tmp/ %s (swept by tmp_max_age 1s: %s), bad/ %s" % (held, tmp_left, swept, bad_left))
print("SUMMARY killcampaign %ss: %d accepted, %d lost, %d duplicated (+%d delivered unaccepted), "
      "%d kills (%d of flush processes in session), tmp/ %s (%s swept), bad/ %s, held %s: %s"
      % (dur, len(accepted), len(lost), len(dups), len(unaccepted), sum(k.values()), during,
         tmp_left, swept, bad_left, held, "PASS" if not lost and held == "0" else "FAIL"))
PY
cat "$KC/report"
grep -q ': PASS$' "$KC/report"
