# SPDX-License-Identifier: ISC
# lib.sh - shared setup of the end-to-end scenario tests (sourced by
# tests/e2e/t_*.sh). One directory, one autoturn.conf, every daemon real:
# a private Postfix on 127.0.0.1 wired like conf/postfix-main.cf.milter and
# conf/postfix-main.cf.policy (milter on a unix: socket, policy service on
# unix:private/autoturn-policy inside Postfix's queue directory, trusted
# because smtpd runs as postfix, with smtpd_delay_reject = no, relay and
# ETRN checks), autoturn-milter,
# autoturn-policyd and autoturn-flusher (Hello port on, bounces by SMTP into
# this Postfix), an smtp-sink "Internet" behind Postfix, and smtp-sinks on
# 127.0.0.x standing for the customers' own servers. Reuses
# tests/integration/lib/*.sh (read-only).
#
#   e2e_init               D (test directory), ports SMTP POLICY PA (the
#                          customers' SMTP port) SINK HELLO; trap e2e_down
#   e2e_config             D/autoturn.conf; extra lines from E2E_MILTER,
#                          E2E_POLICYD, E2E_FLUSHER; E2E_CHECK_INTERVAL
#                          (default 0s)
#   e2e_customers          the customer source on stdin -> D/customers,
#                          compiled by "autoturnctl compile" (as root) into
#                          D/lib/customers.cdb; D/lib is setgid nogroup
#                          (mode 2750, as packaged: /var/lib/autoturn), so
#                          a table compiled by root is readable by the daemons
#   e2e_daemons            flusher, policyd, milter, the Internet's sink
#                          (smtp-sink on 127.0.0.1:SINK)
#   e2e_up                 e2e_daemons and Postfix on 127.0.0.1:SMTP
#                          (relay_domains from E2E_RELAY)
#   e2e_sink NAME IP [opts]    a customer's server: smtp-sink on IP:PA,
#                          files in D/sink-NAME
#   e2e_down               stop everything this test started, remove D
#                          (E2E_KEEP=1 keeps D and its logs)
#   e2e_ctl ARGS...        autoturnctl -c D/autoturn.conf ARGS...
#   e2e_msg FILE TAG       a message with Subject/Message-ID TAG
#   e2e_send SRC-IP FILE RCPT...   mt_smtp from SRC-IP (prints MAIL/RCPT/DATA)
#   e2e_held CUSTOMER      held messages;  e2e_count DIR  files in DIR
#   e2e_wait SECS CMD...   poll CMD every 0.1 s until it succeeds
#   e2e_until SECS WANT CMD...   poll until CMD prints WANT
#   e2e_sink_body FILE     an smtp-sink file without smtp-sink's own lines
#   e2e_sink_same WANT FILE    the message in smtp-sink's FILE is WANT
#                          (smtp-sink stores CRLF as LF and ends with a LF)
#   e2e_check              assert: no sanitizer report in any daemon log
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/integration/lib/postfix.sh"
. "$SRCDIR/tests/integration/lib/milter.sh"
. "$SRCDIR/tests/integration/lib/policyd.sh"
. "$SRCDIR/tests/integration/lib/flusher.sh"

E2E_SINKS=""

e2e_init() {
  D=$(mktemp -d /tmp/autoturn-e2e.XXXXXX) || exit 1
  chmod 0755 "$D"
  mkdir -p "$D/spool" "$D/run" "$D/grants" "$D/lib"
  chown nobody "$D/spool" "$D/grants"
  chown nobody:nogroup "$D/lib"
  chmod 2750 "$D/lib"
  chmod 0755 "$D/run"
  SMTP=$(free_port) POLICY=$(free_port) PA=$(free_port) SINK=$(free_port) HELLO=$(free_port)
  trap e2e_down EXIT
}

e2e_config() {
  cat >"$D/autoturn.conf" <<CONF
log {
    destination = stderr
    level = info
}
spool { directory = "$D/spool" }
customers {
    source = "$D/customers"
    table = "$D/lib/customers.cdb"
    check_interval = ${E2E_CHECK_INTERVAL:-0s}
}
milter {
    listen = { "unix:$D/run/milter.sock:0660" }
    user = nobody
    socket_group = postfix
    ${E2E_MILTER:-}
}
policyd {
    listen = { "inet:127.0.0.1:$POLICY", "unix:$D/pf/queue/private/autoturn-policy:0660" }
    control = "unix:$D/run/policyd-control.sock:0660"
    user = nobody
    socket_group = postfix
    grant_file = "$D/grants/grants"
    ${E2E_POLICYD:-}
}
flusher {
    control = "unix:$D/run/flusher.sock:0660"
    user = nobody
    socket_group = nogroup
    myhostname = flusher.autoturn.test
    bounce_method = smtp
    bounce_relay = "inet:127.0.0.1:$SMTP"
    connect_timeout = 5s
    greeting_timeout = 10s
    command_timeout = 10s
    data_timeout = 10s
    hello {
        enable = true
        listen = { "inet:127.0.0.1:$HELLO" }
    }
    ${E2E_FLUSHER:-}
}
CONF
}

e2e_customers() {
  cat >"$D/customers"
  e2e_ctl compile >"$D/compile.log" 2>&1 || { cat "$D/compile.log" >&2; return 1; }
}

e2e_ctl() {
  "$AUTOTURNCTL" -c "$D/autoturn.conf" "$@"
}

e2e_daemons() {
  fl_start "$D" || { fail "flusher starts" "$(cat "$D/flusher.log")"; return 1; }
  # the policy socket lives in Postfix's queue directory (private/, as packaged)
  mkdir -p "$D/pf/queue/private" && chown postfix "$D/pf/queue/private" &&
    chmod 0700 "$D/pf/queue/private" || { fail "Postfix's private directory"; return 1; }
  # (not pd_start: it would take bounce_relay's port for the policy port)
  "$POLICYD" -f -c "$D/autoturn.conf" 2>>"$D/policyd.log" &
  PD_PID=$!
  wait_port 127.0.0.1 "$POLICY" || { fail "policyd starts" "$(cat "$D/policyd.log")"; return 1; }
  mt_start "$D" || { fail "milter starts" "$(cat "$D/milter.log")"; return 1; }
  sink_start NET "127.0.0.1:$SINK" "$D/sink-net" || { fail "Internet sink starts"; return 1; }
  E2E_SINKS="$E2E_SINKS NET"
}

e2e_up() {
  e2e_daemons || return 1
  local check="unix:private/autoturn-policy"
  pf_new "$D/pf" "$SMTP"
  pf_set "$D/pf" "mynetworks = 127.0.0.1/32" \
    "relay_domains = ${E2E_RELAY:-virt.dom, .virt.dom, beta.example}" \
    "fast_flush_domains = \$relay_domains" \
    "smtpd_milters = unix:$D/run/milter.sock" "milter_protocol = 6" \
    "milter_default_action = tempfail" "in_flow_delay = 0" \
    "default_transport = smtp:[127.0.0.1]:$SINK" "relay_transport = smtp:[127.0.0.1]:$SINK" \
    "smtputf8_enable = yes" \
    "smtpd_delay_reject = no" \
    "smtpd_authorized_xclient_hosts = 127.0.0.1" \
    "smtpd_client_restrictions = check_policy_service { $check, policy_context=notice, default_action=DUNNO }" \
    "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_policy_service { $check, default_action=DUNNO }, reject_unauth_destination" \
    "smtpd_etrn_restrictions = check_policy_service { $check, default_action=DUNNO }"
  pf_start "$D/pf" >"$D/pf-start.log" 2>&1 && wait_port 127.0.0.1 "$SMTP" ||
    { fail "postfix starts" "$(cat "$D/pf-start.log")" "$(pf_log "$D/pf")"; return 1; }
}

e2e_sink() {
  local name=$1 ip=$2; shift 2
  sink_start "$name" "$ip:$PA" "$D/sink-$name" "$@" || { fail "sink $name on $ip:$PA starts"; return 1; }
  E2E_SINKS="$E2E_SINKS $name"
}

e2e_down() {
  local s
  set +e
  [ -n "${D:-}" ] && [ -d "$D/pf" ] && pf_stop "$D/pf"
  [ -n "${SM_PID:-}" ] && sm_stop "$D/sm"
  for s in $E2E_SINKS; do sink_stop "$s"; done
  E2E_SINKS=""
  mt_stop; pd_stop; fl_stop
  if [ "${E2E_KEEP:-0}" = 1 ]; then echo "kept $D"; else rm -rf "$D"; fi
  rm -rf "$WORK"
}

e2e_msg() {
  printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n\r\nmessage %s\r\n' \
    "$2" "$2" "$2" >"$1"
}

e2e_send() {
  local src=$1; shift
  MT_SRC=$src mt_smtp "$SMTP" s@example.org "$@"
}

e2e_held() { fl_held "$D" "$1"; }
e2e_count() { find "$1" -type f 2>/dev/null | wc -l; }

e2e_wait() {
  local secs=$1 i; shift
  for i in $(seq 1 $((secs * 10))); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

e2e_until() {
  local secs=$1 want=$2 i; shift 2
  for i in $(seq 1 $((secs * 10))); do
    [ "$("$@")" = "$want" ] && return 0
    sleep 0.1
  done
  return 1
}

# smtp-sink writes X-* lines and its Received: header before the data;
# then comes the flusher's Received: line (tests/integration/lib/mailcheck.py)
e2e_sink_body() {
  python3 - "$1" "$SRCDIR/tests/integration/lib" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from mailcheck import after_sink, strip_ours
d = open(sys.argv[1], 'rb').read()
sys.stdout.buffer.write(strip_ours(after_sink(d[d.index(b'\nReceived: ') + 1:]))[1])
PY
}

# e2e_sink_same WANT FILE [imported] - the message below our Received:
# line, which must be there and name the (loopback) client the milter saw;
# with "imported" (autoturnctl import: no SMTP client ever saw the message)
# the line must have no from clause instead
e2e_sink_same() {
  python3 - "$1" "$2" "$SRCDIR/tests/integration/lib" "${3:-}" <<'PY'
import re, sys
sys.path.insert(0, sys.argv[3])
from mailcheck import after_sink, strip_ours, received_ok
want = open(sys.argv[1], 'rb').read().replace(b'\r\n', b'\n') + b'\n'
d = open(sys.argv[2], 'rb').read()
ours, got = strip_ours(after_sink(d[d.index(b'\nReceived: ') + 1:]))
by = re.search(rb'by ([^ ]+) \(autoturn\)', ours or b'')
why = received_ok(ours, by.group(1).decode() if by else '?')
if why:
    pass
elif sys.argv[4] == 'imported':
    if not re.search(rb'^Received: by [^ ]+ \(autoturn\) id import\.', ours):
        why = 'not an imported message\'s line (by ... id import.): %r' % ours
elif not re.search(rb'^Received: from [^ ]+ \([^)]*\[127\.', ours):
    why = 'no client recorded by the milter: %r' % ours
if why:
    print("our Received: line: " + why)
    sys.exit(1)
if got != want:
    print("differ: want %d bytes, got %d" % (len(want), len(got)))
    sys.exit(1)
PY
}

# e2e_check - also catches a daemon that died under AddressSanitizer (it
# found the flusher's use-after-free of a closed control connection that a
# forked flush child still held, fixed in 7023df4).
e2e_check() {
  local f bad=""
  for f in "$D"/milter.log "$D"/policyd.log "$D"/flusher.log; do
    grep -Eq 'Sanitizer|runtime error:|Segmentation|Aborted' "$f" 2>/dev/null && bad="$bad $f"
  done
  [ -z "$bad" ] && pass "no sanitizer report or crash in the daemon logs" ||
    fail "no sanitizer report or crash in the daemon logs" "$(grep -E -A10 'Sanitizer|runtime error:' $bad | head -30)"
}
