# SPDX-License-Identifier: ISC
# flusher.sh - autoturn-flusher for the integration tests (sourced after
# postfix.sh). Everything lives under one test directory; the flusher runs
# as user nobody with a spool owned by nobody. Bounces go to a FAKE local
# MTA: DIR/fake-sendmail, a script standing in for /usr/sbin/sendmail that
# records its arguments and standard input in DIR/dsn/N.{args,msg} (t_dsn.sh
# covers injection into a real Postfix).
#
#   fl_dir                     a fresh test directory (mode 0755)
#   fl_config DIR [LINE...]    DIR/autoturn.conf; extra LINEs go into flusher { }
#   fl_customers DIR           compile the customer source on stdin
#   fl_start DIR / fl_stop     the flusher in the foreground (pid FL_PID),
#                              log in DIR/flusher.log
#   fl_put DIR CUSTOMER FILE RCPT...   hold FILE (sender s@example.org;
#                              spool_put options in FL_PUT_OPTS, e.g. the client;
#                              FL_PUT_SENDER replaces the sender: "addr|PARAMS")
#   fl_held DIR CUSTOMER       number of held messages
#   fl_ctl DIR ARGS...         autoturnctl -c DIR/autoturn.conf ARGS...
#   fl_raw DIR LINE            send one control line, print the reply lines
#   fl_locked DIR CUSTOMER     someone holds the customer's spool lock
#   fl_idle DIR CUSTOMER       wait until no flush of CUSTOMER runs: after
#                              "flush --wait" returns (the flush process
#                              answers, then unlocks and exits) or a fetchmail
#                              ODMR poll ends, before the next flush of the
#                              same customer (else it may find it busy)
: "${BUILDDIR:?set by ctest}" "${AUTOTURNCTL:?set by ctest}" "${SPOOL_PUT:?set by ctest}"
FLUSHER=${FLUSHER:-$BUILDDIR/flusher/autoturn-flusher}

fl_dir() {
  local d
  d=$(mktemp -d /tmp/autoturn-flusher.XXXXXX) || return 1
  chmod 0755 "$d"
  echo "$d"
}

fl_config() {
  local dir=$1 line; shift
  mkdir -p "$dir/spool" "$dir/run" "$dir/dsn"
  chown nobody "$dir/spool" "$dir/dsn"
  cat >"$dir/fake-sendmail" <<SH
#!/bin/sh
# FAKE local MTA for the tests: records argv and the message.
n=\$(date +%s%N)
printf '%s\n' "\$@" >"$dir/dsn/\$n.args"
cat >"$dir/dsn/\$n.msg"
SH
  chmod 0755 "$dir/fake-sendmail"
  {
    echo "log { destination = stderr"
    echo "      level = info }"
    echo "spool { directory = \"$dir/spool\" }"
    echo "customers { table = \"$dir/customers.cdb\""
    echo "            check_interval = 0s }"
    echo "flusher {"
    echo "    control = \"unix:$dir/run/flusher.sock:0660\""
    echo "    user = nobody"
    echo "    myhostname = flusher.autoturn.test"
    echo "    bounce_method = sendmail"
    echo "    sendmail_command = \"$dir/fake-sendmail\""
    echo "    connect_timeout = 5s"
    echo "    greeting_timeout = 10s"
    echo "    command_timeout = 10s"
    echo "    data_timeout = 10s"
    for line in "$@"; do echo "    $line"; done
    echo "}"
  } >"$dir/autoturn.conf"
}

fl_customers() {
  local dir=$1
  cat >"$dir/customers"
  "$AUTOTURNCTL" compile "$dir/customers" "$dir/customers.cdb" >"$dir/compile.log" 2>&1 || {
    cat "$dir/compile.log" >&2; return 1; }
  chmod 0644 "$dir/customers.cdb"
}

fl_start() {
  local dir=$1 i
  "$FLUSHER" -f -c "$dir/autoturn.conf" >>"$dir/flusher.log" 2>&1 &
  FL_PID=$!
  for i in $(seq 1 100); do
    grep -q 'started: control' "$dir/flusher.log" 2>/dev/null && [ -S "$dir/run/flusher.sock" ] &&
      return 0
    kill -0 "$FL_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

fl_stop() {
  [ -n "${FL_PID:-}" ] || return 0
  kill "$FL_PID" 2>/dev/null
  wait "$FL_PID" 2>/dev/null
  FL_PID=
}

fl_put() {
  local dir=$1 cust=$2 file=$3; shift 3
  # shellcheck disable=SC2086
  "$SPOOL_PUT" ${FL_PUT_OPTS:-} "$dir/spool" "$cust" "${FL_PUT_SENDER:-s@example.org}" "$@" \
    <"$file" >/dev/null ||
    return 1
  chown -R nobody "$dir/spool"
}

fl_held() {
  find "$1/spool/$2/new" "$1/spool/$2/cur" -type f 2>/dev/null | wc -l
}

fl_ctl() {
  local dir=$1; shift
  "$AUTOTURNCTL" -c "$dir/autoturn.conf" "$@"
}

fl_raw() {
  python3 - "$1/run/flusher.sock" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
sys.stdout.write(data.decode())
PY
}

fl_locked() {
  # from /proc/locks: taking the lock to test it could make a flush that
  # starts at that moment find it busy
  local f="$1/spool/$2/.lock" ino
  [ -e "$f" ] || return 1
  ino=$(stat -c %i "$f") || return 1
  grep -Eq "^[0-9]+: FLOCK +ADVISORY +WRITE +[0-9]+ +[0-9a-f]+:[0-9a-f]+:$ino " /proc/locks
}

fl_not_flushing() {
  ! fl_raw "$1" STATUS 2>/dev/null | grep -q "^FLUSHING customer=$2 "
}

fl_idle() {
  wait_for 30 fl_not_flushing "$1" "$2" && wait_for 30 eval "! fl_locked '$1' '$2'"
}
