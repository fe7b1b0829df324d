# SPDX-License-Identifier: ISC
# policyd.sh - an autoturn-policyd instance, a customer table and a fake
# flusher for the integration tests (sourced after postfix.sh).
#
#   pd_setup DIR PORT CUSTOMER-SOURCE-TEXT [extra policyd settings]
#                          write DIR/autoturn.conf (policy sockets
#                          inet:127.0.0.1:PORT, untrusted, and
#                          unix:DIR/policy.sock mode 0666, trusted for root
#                          and postfix only, plus the entries in PD_LISTEN,
#                          e.g. '"unix:/q/private/p:0660"'; control
#                          DIR/control.sock, flusher DIR/flusher.sock, grants
#                          DIR/grants/grants, user nobody) and compile
#                          DIR/customers.cdb
#   pd_start DIR / pd_stop DIR    (pid in PD_PID; log in DIR/policyd.log)
#   flusher_start DIR / flusher_stop
#                          THE FAKE FLUSHER: autoturn-flusher is written
#                          in parallel, so a small python3 UNIX socket
#                          server stands in for it. It accepts control
#                          connections on DIR/flusher.sock, appends every
#                          line it receives to DIR/flush.log and closes
#                          (as ctl_notify expects, it does not answer).
#   flush_count DIR REGEX  lines of DIR/flush.log matching REGEX
#   policy_ask PORT|PATH ATTR=VALUE...  one request over TCP (a port) or
#                          a UNIX socket (a path); prints the action
: "${BUILDDIR:?set by ctest}"
POLICYD=${POLICYD:-$BUILDDIR/policyd/autoturn-policyd}

pd_setup() {
  local dir=$1 port=$2 src=$3 extra=${4:-}
  mkdir -p "$dir/grants"
  chmod 755 "$dir"
  chown nobody:nogroup "$dir/grants"
  printf '%s\n' "$src" >"$dir/customers"
  "$AUTOTURNCTL" compile "$dir/customers" "$dir/customers.cdb" >/dev/null || return 1
  chmod 644 "$dir/customers.cdb"
  cat >"$dir/autoturn.conf" <<CONF
log {
    destination = stderr
    level = debug
}
customers {
    source = "$dir/customers"
    table = "$dir/customers.cdb"
    check_interval = 0s
}
policyd {
    listen = { "inet:127.0.0.1:$port", "unix:$dir/policy.sock:0666"${PD_LISTEN:+, $PD_LISTEN} }
    control = "unix:$dir/control.sock:0600"
    user = nobody
    group = nogroup
    grant_file = "$dir/grants/grants"
    $extra
}
flusher {
    control = "unix:$dir/flusher.sock:0660"
}
CONF
}

pd_start() {
  local dir=$1 port
  port=$(sed -n 's/.*"inet:127.0.0.1:\([0-9]*\)".*/\1/p' "$dir/autoturn.conf")
  "$POLICYD" -f -c "$dir/autoturn.conf" 2>>"$dir/policyd.log" &
  PD_PID=$!
  wait_port 127.0.0.1 "$port"
}

pd_stop() {
  [ -n "${PD_PID:-}" ] || return 0
  kill -TERM "$PD_PID" 2>/dev/null
  wait "$PD_PID" 2>/dev/null
  PD_RC=$?
  PD_PID=
}

flusher_start() {
  local dir=$1
  rm -f "$dir/flusher.sock"
  : >"$dir/flush.log"
  python3 - "$dir/flusher.sock" "$dir/flush.log" <<'PY' &
# Fake autoturn-flusher (see policyd.sh): record FLUSH lines, reply nothing.
import os, socket, sys
path, logf = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(64)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    data = b""
    try:
        while not data.endswith(b"\n"):
            d = c.recv(4096)
            if not d:
                break
            data += d
    except OSError:
        pass
    c.close()
    with open(logf, "ab") as f:
        f.write(data if data.endswith(b"\n") else data + b"\n")
PY
  FLUSHER_PID=$!
  local i
  for i in $(seq 1 50); do [ -S "$dir/flusher.sock" ] && return 0; sleep 0.1; done
  return 1
}

flusher_stop() {
  [ -n "${FLUSHER_PID:-}" ] && kill "$FLUSHER_PID" 2>/dev/null && wait "$FLUSHER_PID" 2>/dev/null
  FLUSHER_PID=
  return 0
}

flush_count() {
  grep -Ec -- "$2" "$1/flush.log" 2>/dev/null || true
}

policy_ask() {
  local to=$1; shift
  python3 - "$to" "$@" <<'PY'
import socket, sys
to = sys.argv[1]
req = "request=smtpd_access_policy\n" + "".join(a + "\n" for a in sys.argv[2:]) + "\n"
if to.isdigit():
    s = socket.create_connection(("127.0.0.1", int(to)), timeout=5)
else:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(to)
s.sendall(req.encode())
buf = b""
while not buf.endswith(b"\n\n"):
    d = s.recv(4096)
    if not d:
        print("EOF"); sys.exit(1)
    buf += d
print(buf.decode().strip().replace("action=", "", 1))
PY
}
