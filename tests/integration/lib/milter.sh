# SPDX-License-Identifier: ISC
# milter.sh - autoturn-milter behind a private Postfix for the integration
# tests (sourced after postfix.sh). Everything lives under one test
# directory; the milter runs as user nobody with a spool owned by nobody,
# and its socket belongs to group postfix (smtpd and cleanup connect as
# user postfix).
#
#   mt_dir                 a fresh test directory (mode 0755, so that the
#                          users nobody and postfix can reach it)
#   mt_config DIR [LINE...]    DIR/autoturn.conf; extra LINEs go into milter { }
#   mt_customers DIR       compile the customer source on stdin into DIR/customers.cdb
#   mt_start DIR / mt_stop DIR     the milter in the foreground, log in DIR/milter.log
#   mt_postfix DIR PORT SINKPORT RELAY_DOMAINS   a private Postfix on PORT
#                          with the milter attached; mail that is not held goes
#                          to the smtp-sink on SINKPORT
#   mt_spool_files DIR CUSTOMER    files in the customer's new/
#   mt_body FILE           a spool file without its envelope block
: "${BUILDDIR:?set by ctest}" "${AUTOTURNCTL:?set by ctest}"
MILTER=$BUILDDIR/milter/autoturn-milter

mt_dir() {
  local d
  d=$(mktemp -d /tmp/autoturn-milter.XXXXXX) || return 1
  chmod 0755 "$d"
  echo "$d"
}

mt_config() {
  local dir=$1; shift
  mkdir -p "$dir/spool" "$dir/run"
  chown nobody "$dir/spool"
  chmod 0755 "$dir/run"
  {
    echo "log { destination = stderr"
    echo "      level = info }"
    echo "spool { directory = \"$dir/spool\" }"
    echo "customers { table = \"$dir/customers.cdb\""
    echo "            check_interval = 0s }"
    echo "milter {"
    echo "    listen = { \"unix:$dir/run/milter.sock:0660\" }"
    echo "    user = nobody"
    echo "    socket_group = postfix"
    local line
    for line in "$@"; do echo "    $line"; done
    echo "}"
    echo "flusher { control = \"unix:$dir/run/flusher.sock:0660\" }"
  } >"$dir/autoturn.conf"
}

mt_customers() {
  local dir=$1
  cat >"$dir/customers"
  "$AUTOTURNCTL" compile "$dir/customers" "$dir/customers.cdb" >"$dir/compile.log" 2>&1 || {
    cat "$dir/compile.log" >&2; return 1; }
  chmod 0644 "$dir/customers.cdb"
}

mt_start() {
  local dir=$1 i
  rm -f "$dir/run/milter.sock"
  "$MILTER" -f -c "$dir/autoturn.conf" >>"$dir/milter.log" 2>&1 &
  MT_PID=$!
  for i in $(seq 1 100); do
    grep -q 'starting: listening' "$dir/milter.log" 2>/dev/null && [ -S "$dir/run/milter.sock" ] &&
      return 0
    kill -0 "$MT_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

mt_stop() {
  [ -n "${MT_PID:-}" ] || return 0
  kill "$MT_PID" 2>/dev/null
  wait "$MT_PID" 2>/dev/null
  MT_PID=
}

mt_postfix() {
  local dir=$1 port=$2 sinkport=$3 relay=$4
  pf_new "$dir/pf" "$port"
  pf_set "$dir/pf" "smtpd_milters = unix:$dir/run/milter.sock" \
    "milter_protocol = 6" "milter_default_action = tempfail" "in_flow_delay = 0" \
    "relay_domains = $relay" \
    "default_transport = smtp:[127.0.0.1]:$sinkport" \
    "relay_transport = smtp:[127.0.0.1]:$sinkport" \
    "smtputf8_enable = yes"
}

mt_spool_files() {
  find "$1/spool/$2/new" -type f 2>/dev/null | sort
}

mt_body() {
  sed '1,/^X-Autoturn-End:/d' "$1"
}

# mt_smtp PORT FROM MSGFILE RCPT... - one SMTP transaction with Python's
# smtplib (replies are checked one by one; swaks stops at the first
# rejected recipient). Prints "MAIL code text", one "RCPT <addr> code text"
# per recipient and "DATA code text". Environment: MT_SRC (source
# address, e.g. 127.0.0.2), MT_MAIL_OPTS / MT_RCPT_OPTS (ESMTP parameters,
# space-separated), MT_RCPT_FILE (recipients one per line, after the
# arguments), MT_UTF8=1 (send commands in UTF-8).
mt_smtp() {
  local port=$1 from=$2 msg=$3; shift 3
  python3 - "$port" "$from" "$msg" "$@" <<'PY'
import os, smtplib, sys
port, sender, msgfile, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
if os.environ.get("MT_RCPT_FILE"):
    rcpts += open(os.environ["MT_RCPT_FILE"], encoding="utf-8").read().split()
src = os.environ.get("MT_SRC")
s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0) if src else None, timeout=120)
if os.environ.get("MT_UTF8"):
    s.command_encoding = "utf-8"
s.ehlo("client.test")
def show(what, code, text):
    t = text.decode("utf-8", "replace").replace("\n", " ")
    print(f"{what} {code} {t}", flush=True)
code, text = s.mail(sender, os.environ.get("MT_MAIL_OPTS", "").split())
show("MAIL", code, text)
ok = 0
if code == 250:
    for r in rcpts:
        code, text = s.rcpt(r, os.environ.get("MT_RCPT_OPTS", "").split())
        show(f"RCPT <{r}>", code, text)
        ok += code in (250, 251)
if ok:
    try:
        code, text = s.data(open(msgfile, "rb").read())
    except smtplib.SMTPDataError as e:
        code, text = e.smtp_code, e.smtp_error
    show("DATA", code, text)
else:
    s.rset()
s.quit()
PY
}

# mt_up DIR RELAY_DOMAINS [MILTER_LINE...] - config (customer source must
# already be compiled with mt_customers), milter, smtp-sink and Postfix;
# sets PORT and SINKPORT. mt_down DIR undoes it (safe to call twice).
mt_up() {
  local dir=$1 relay=$2; shift 2
  mt_config "$dir" "$@"
  mt_start "$dir" || { echo "milter did not start:"; cat "$dir/milter.log"; return 1; }
  PORT=$(free_port); SINKPORT=$(free_port)
  sink_start MT "127.0.0.1:$SINKPORT" "$dir/sink" || return 1
  mt_postfix "$dir" "$PORT" "$SINKPORT" "$relay"
  pf_start "$dir/pf" >"$dir/pf-start.log" 2>&1 || { cat "$dir/pf-start.log"; return 1; }
  wait_port 127.0.0.1 "$PORT"
}

mt_down() {
  local dir=$1
  [ -d "$dir/pf" ] && pf_stop "$dir/pf"
  sink_stop MT
  mt_stop
}

# mt_sink_count DIR - messages received by the smtp-sink
mt_sink_count() {
  find "$1/sink" -type f 2>/dev/null | wc -l
}

# mt_wait_qid DIR QUEUEID - wait until Postfix is done with a message
mt_wait_qid() {
  pf_wait_log "$1/pf" "$2: (removed|milter-discard)" 20
}

# mt_qid - the queue id in a "DATA 250 ... queued as ID" line on stdin
mt_qid() {
  sed -n 's/^DATA 250 .*queued as \([0-9A-F]*\).*/\1/p'
}

# mt_fake_flusher SOCKET OUTFILE - a fake standing in for autoturn-flusher
# (not written yet): accepts connections on the control socket and appends
# every request line to OUTFILE. Pid in FAKE_PID.
mt_fake_flusher() {
  python3 - "$1" "$2" <<'PY' &
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); os.chmod(path, 0o666); s.listen(64)
open(out, "a").close()
while True:
    c, _ = s.accept()
    data = b""
    while True:
        b = c.recv(4096)
        if not b:
            break
        data += b
    c.close()
    with open(out, "ab") as f:
        f.write(data)
PY
  FAKE_PID=$!
  local i
  for i in $(seq 1 50); do [ -S "$1" ] && return 0; sleep 0.1; done
  return 1
}

# mt_check_log DIR - stop the milter and fail if it reported a sanitizer
# error, a leak or a crash (builds with -DAUTOTURN_SANITIZE=ON).
mt_check_log() {
  mt_stop
  if grep -Eq 'Sanitizer|runtime error:|Segmentation|Aborted' "$1/milter.log"; then
    fail "milter log has no sanitizer report" "$(grep -E -A20 'Sanitizer|runtime error:' "$1/milter.log" | head -40)"
  else
    pass "milter log has no sanitizer report"
  fi
}
