# SPDX-License-Identifier: ISC
# postfix.sh - private Postfix instances and smtp-sink peers for the
# integration tests (sourced). Everything lives under a test's own
# directory and listens on loopback only; the system Postfix is untouched.
# Facts this relies on: ../shared/MTA-NOTES.md ("A private Postfix for tests").
#
#   pf_new DIR PORT        write DIR/conf/{main,master}.cf for an instance
#                          whose smtpd listens on 127.0.0.1:PORT
#   pf_set DIR 'key = value'...   append main.cf settings (postconf -e)
#   pf_start DIR / pf_stop DIR
#   pf_log DIR             the instance's maillog
#   pf_queue_count DIR     messages in its queue
#   pf_wait_log DIR REGEX [SECONDS]   wait for a maillog line
#   sink_start NAME ADDR:PORT DIR [smtp-sink options...]  (pid in SINK_PID_NAME)
#   sink_stop NAME
#   free_port              an unused TCP port on 127.0.0.1

pf_new() {
  local dir=$1 port=$2
  mkdir -p "$dir/conf" "$dir/queue" "$dir/data" "$dir/log"
  chown postfix "$dir/data"
  cat >"$dir/conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.autoturn.test
mydomain = autoturn.test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtp_dns_support_level = disabled
alias_maps =
alias_database =
local_recipient_maps =
maillog_file_prefixes = $dir
maillog_file = $dir/log/maillog
mynetworks = 127.0.0.0/8
relay_domains =
in_flow_delay = 0
smtpd_banner = \$myhostname ESMTP
biff = no
smtp_connect_timeout = 5s
CF
  cat >"$dir/conf/master.cf" <<CF
127.0.0.1:$port inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
local      unix  - n n - - local
virtual    unix  - n n - - virtual
lmtp       unix  - - n - - lmtp
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
CF
}

pf_set() {
  local dir=$1; shift
  postconf -c "$dir/conf" -e "$@"
}

pf_start() {
  local dir=$1
  postfix -c "$dir/conf" check || return 1
  postfix -c "$dir/conf" start || return 1
}

pf_stop() {
  local dir=$1
  postfix -c "$dir/conf" stop >/dev/null 2>&1 || true
  # master exits asynchronously; wait for its pid file to go
  local i
  for i in $(seq 1 50); do
    [ -e "$dir/queue/pid/master.pid" ] && kill -0 "$(tr -d ' ' <"$dir/queue/pid/master.pid")" 2>/dev/null || return 0
    sleep 0.1
  done
}

pf_log() { cat "$1/log/maillog" 2>/dev/null; }

pf_queue_count() {
  find "$1/queue/incoming" "$1/queue/active" "$1/queue/deferred" "$1/queue/hold" \
    "$1/queue/maildrop" -type f 2>/dev/null | wc -l
}

pf_wait_log() {
  local dir=$1 re=$2 secs=${3:-20} i
  for i in $(seq 1 $((secs * 10))); do
    grep -Eq -- "$re" "$dir/log/maillog" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {   # HOST PORT [SECONDS]
  local host=$1 port=$2 secs=${3:-10} i
  for i in $(seq 1 $((secs * 10))); do
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

sink_start() {   # NAME ADDR:PORT DIR [options]  (IPv6: [::1]:PORT and option -6)
  local name=$1 addr=$2 dir=$3 host; shift 3
  mkdir -p "$dir"
  chown nobody "$dir"
  smtp-sink -u nobody -c -d "$dir/%H%M%S." "$@" "$addr" 256 >"$dir.log" 2>&1 &
  eval "SINK_PID_$name=$!"
  host=${addr%:*}; host=${host#[}; host=${host%]}
  wait_port "$host" "${addr##*:}"
}

sink_stop() {
  local name=$1 pid
  eval "pid=\${SINK_PID_$name:-}"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  return 0
}
