# SPDX-License-Identifier: ISC
# sendmail.sh - a private Sendmail 8.17 for the integration tests
# (sourced after postfix.sh). Debian's sendmail-bin conflicts with postfix,
# so the packages are fetched with apt-get download into a cache directory,
# unpacked with dpkg -x, and the daemon runs with a private .cf in its own
# UTS + mount namespace (dotted hostname, private /etc/hosts, nsswitch.conf
# and /dev/log), listening on loopback only. The system is left untouched.
# Facts this relies on: ../shared/MTA-NOTES.md ("A private Sendmail for
# tests, beside Postfix").
#
#   sm_fetch               packages into SM_CACHE, unpacked into SM_ROOT
#                          (idempotent; apt-get update only if needed)
#   sm_cf DIR PORT SINKPORT MC_SNIPPET   DIR/sendmail.mc (MC_SNIPPET is
#                          include()d) and DIR/sendmail.cf built with m4;
#                          mail that is not local goes to 127.0.0.1:SINKPORT
#   sm_start DIR / sm_stop DIR   sendmail -bD on 127.0.0.1:PORT; its syslog
#                          lines go to DIR/log/maillog
#   sm_log DIR             the maillog
#   sm_wait_log DIR REGEX [SECONDS]
#   sm_qid                 the queue id in a "DATA 250 2.0.0 ID Message
#                          accepted" line on stdin
#   sm_queue_count DIR     messages in its queue
SM_CACHE=${AUTOTURN_SM_CACHE:-/var/cache/autoturn-tests/sendmail}
SM_ROOT=$SM_CACHE/root
SM_BIN=$SM_ROOT/usr/libexec/sendmail/sendmail
# Unpacked always; the libraries only when the system lacks them (they are
# sendmail-bin's dependencies that a machine with postfix and cmake may miss).
SM_PACKAGES="sendmail-bin sendmail-base sendmail-cf libwrap0"
SM_LIBPACKAGES="libdb5.3 libldap-2.5-0 libnsl2 libsasl2-2"

sm_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# sm_download PACKAGE... - .debs into SM_CACHE unless already there
sm_download() {
  local p need=()
  for p in "$@"; do
    ls "$SM_CACHE/${p}_"*.deb >/dev/null 2>&1 || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  (cd "$SM_CACHE" && apt-get -q -o APT::Sandbox::User=root download "${need[@]}") \
    >"$SM_CACHE/download.log" 2>&1 && return 0
  # A fresh machine may have no package lists yet: update, then once more.
  grep -Eq 'Unable to locate package|has no installation candidate|Can.t select' \
    "$SM_CACHE/download.log" || return 1
  apt-get -q update >>"$SM_CACHE/download.log" 2>&1 || return 1
  (cd "$SM_CACHE" && apt-get -q -o APT::Sandbox::User=root download "${need[@]}") \
    >>"$SM_CACHE/download.log" 2>&1
}

sm_fetch_locked() {
  local pkgs=$SM_PACKAGES p f
  for p in $SM_LIBPACKAGES; do sm_installed "$p" || pkgs="$pkgs $p"; done
  command -v m4 >/dev/null || pkgs="$pkgs m4"
  sm_download $pkgs || { cat "$SM_CACHE/download.log"; return 1; }
  local stamp
  # the newest cached version of each package
  stamp=$(for p in $pkgs; do ls "$SM_CACHE/${p}_"*.deb | sort -V | tail -1; done | sort)
  if [ -x "$SM_BIN" ] && [ "$(cat "$SM_ROOT/.unpacked" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  rm -rf "$SM_ROOT" && mkdir -p "$SM_ROOT" || return 1
  for f in $stamp; do dpkg -x "$f" "$SM_ROOT" || return 1; done
  # setgid: glibc would ignore LD_LIBRARY_PATH (libwrap0 is unpacked only)
  chmod g-s "$SM_BIN" || return 1
  printf '%s\n' "$stamp" >"$SM_ROOT/.unpacked"
}

sm_fetch() {
  mkdir -p "$SM_CACHE" || return 1
  (flock 9 && sm_fetch_locked) 9>"$SM_CACHE/.lock" || return 1
  local missing
  missing=$(LD_LIBRARY_PATH=$(sm_libpath) ldd "$SM_BIN" | grep 'not found')
  [ -z "$missing" ] || { echo "sendmail: missing libraries: $missing"; return 1; }
}

sm_libpath() {
  local triplet
  triplet=$(uname -m)-linux-gnu
  echo "$SM_ROOT/usr/lib/$triplet:$SM_ROOT/lib/$triplet"
}

sm_m4() {
  if command -v m4 >/dev/null; then m4 "$@"; else "$SM_ROOT/usr/bin/m4" "$@"; fi
}

sm_cf() {
  local dir=$1 port=$2 sinkport=$3 snippet=$4 cf=$SM_ROOT/usr/share/sendmail/cf
  mkdir -p "$dir/etc" "$dir/queue" "$dir/run" "$dir/log" "$dir/dev"
  chmod 0700 "$dir/queue"
  printf '127.0.0.1 mx.sendmail.test mx localhost\n127.0.0.1 sink.sendmail.test\n' >"$dir/etc/hosts"
  printf 'hosts: files\npasswd: files\ngroup: files\n' >"$dir/etc/nsswitch.conf"
  printf 'hosts files\naliases files\n' >"$dir/etc/service.switch"
  : >"$dir/etc/statistics"
  cat >"$dir/sendmail.mc" <<MC
divert(-1)
dnl A hermetic Sendmail for the autoturn tests: loopback only, no DNS,
dnl everything under $dir.
divert(0)dnl
VERSIONID(\`autoturn test')
define(\`MAIL_SETTINGS_DIR', \`$dir/etc/')dnl
OSTYPE(\`linux')dnl
define(\`QUEUE_DIR', \`$dir/queue')dnl
define(\`STATUS_FILE', \`$dir/etc/statistics')dnl
define(\`ALIAS_FILE', \`')dnl
define(\`HELP_FILE', \`$dir/etc/helpfile')dnl
define(\`confPID_FILE', \`$dir/run/sendmail.pid')dnl
define(\`confSERVICE_SWITCH_FILE', \`$dir/etc/service.switch')dnl
define(\`confHOSTS_FILE', \`$dir/etc/hosts')dnl
define(\`confDONT_PROBE_INTERFACES', \`true')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`confQUEUE_LA', \`500')dnl
define(\`confREFUSE_LA', \`1000')dnl
define(\`confDELAY_LA', \`0')dnl
define(\`confLOG_LEVEL', \`10')dnl
define(\`confMILTER_LOG_LEVEL', \`10')dnl
define(\`confTO_CONNECT', \`5s')dnl
define(\`confTO_ICONNECT', \`5s')dnl
define(\`confPRIVACY_FLAGS', \`goaway')dnl
define(\`confSMTP_LOGIN_MSG', \`\$j ESMTP')dnl
define(\`SMART_HOST', \`[sink.sendmail.test]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $sinkport')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $sinkport')dnl
define(\`SMTP_MAILER_ARGS', \`TCP \$h $sinkport')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`accept_unresolvable_domains')dnl
DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA')dnl
include(\`$snippet')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
MC
  sm_m4 -D_CF_DIR_="$cf/" "$cf/m4/cf.m4" "$dir/sendmail.mc" >"$dir/sendmail.cf" 2>"$dir/m4.log" || {
    cat "$dir/m4.log"; return 1; }
  # cf.m4 reports errors on stderr but still exits 0
  ! grep -Eq '^(\*\*\*|m4:)|ERROR' "$dir/m4.log" || { cat "$dir/m4.log"; return 1; }
  chmod 0644 "$dir/sendmail.cf"
}

# sm_syslog SOCKET FILE - a tiny syslogd: every datagram on SOCKET becomes
# one line of FILE, without its <priority> prefix.
sm_syslog() {
  python3 - "$1" "$2" <<'PY' &
import os, re, socket, sys
path, out = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(out, "ab", buffering=0) as f:
    while True:
        d = s.recv(65536)
        f.write(re.sub(rb"^<\d+>", b"", d).rstrip(b"\0\n") + b"\n")
PY
  SM_LOG_PID=$!
  local i
  for i in $(seq 1 50); do [ -S "$1" ] && return 0; sleep 0.1; done
  return 1
}

# sm_start DIR PORT - runs Sendmail in the foreground (-bD) in new UTS and
# mount namespaces; unshare execs the shell that execs Sendmail, so SM_PID
# is the daemon itself. Only /dev/null, /dev/zero and the random devices
# are visible in its /dev, beside the log socket.
sm_start() {
  local dir=$1 port=$2
  : >"$dir/log/maillog"
  sm_syslog "$dir/dev/log" "$dir/log/maillog" || return 1
  LD_LIBRARY_PATH=$(sm_libpath) unshare --uts --mount sh -c '
    d=$1 bin=$2
    hostname mx.sendmail.test || exit 1
    for n in null zero full random urandom; do
      : >"$d/dev/$n" && mount --bind "/dev/$n" "$d/dev/$n" || exit 1
    done
    mount --rbind "$d/dev" /dev || exit 1
    mount --bind "$d/etc/hosts" /etc/hosts || exit 1
    mount --bind "$d/etc/nsswitch.conf" /etc/nsswitch.conf || exit 1
    exec "$bin" -C "$d/sendmail.cf" -bD -O LogLevel=10
  ' sh "$dir" "$SM_BIN" >"$dir/log/stderr" 2>&1 &
  SM_PID=$!
  local i
  for i in $(seq 1 100); do
    SM_NS=$(readlink "/proc/$SM_PID/ns/uts" 2>/dev/null)
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$SM_PID" 2>/dev/null || { cat "$dir/log/stderr" "$dir/log/maillog"; return 1; }
    sleep 0.1
  done
  cat "$dir/log/stderr"
  return 1
}

# sm_stop DIR - TERM the daemon, then any delivery or session child left
# in its UTS namespace (only processes this test started live there).
sm_stop() {
  local dir=$1 p i
  if [ -n "${SM_PID:-}" ]; then
    kill "$SM_PID" 2>/dev/null
    for i in $(seq 1 50); do kill -0 "$SM_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SM_PID" 2>/dev/null
    wait "$SM_PID" 2>/dev/null
    # never the test's own namespace (SM_NS is read before unshare ran)
    if [ -n "${SM_NS:-}" ] && [ "$SM_NS" != "$(readlink /proc/$$/ns/uts)" ]; then
      for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/uts" 2>/dev/null)" = "$SM_NS" ] && kill -KILL "${p#/proc/}" 2>/dev/null
      done
    fi
    SM_PID=
  fi
  if [ -n "${SM_LOG_PID:-}" ]; then
    kill "$SM_LOG_PID" 2>/dev/null
    wait "$SM_LOG_PID" 2>/dev/null
    SM_LOG_PID=
  fi
  return 0
}

sm_log() { cat "$1/log/maillog" 2>/dev/null; }

sm_wait_log() {
  local dir=$1 re=$2 secs=${3:-20} i
  for i in $(seq 1 $((secs * 10))); do
    grep -Eq -- "$re" "$dir/log/maillog" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

sm_qid() {
  sed -n 's/^DATA 250 [0-9.]* \([0-9A-Za-z]*\) Message accepted.*/\1/p'
}

sm_queue_count() {
  find "$1/queue" -type f -name 'qf*' 2>/dev/null | wc -l
}
