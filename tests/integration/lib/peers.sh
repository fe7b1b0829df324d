# SPDX-License-Identifier: ISC
# peers.sh - other makes of customer server for the integration tests
# (sourced after postfix.sh): Exim 4.96 and OpenSMTPD 6.8. Debian's
# exim4-daemon-light and opensmtpd conflict with postfix, so they are
# fetched with apt-get download into /var/cache/autoturn-tests/<peer>,
# unpacked with dpkg -x (libraries the system lacks too), and each daemon
# runs in its own mount namespace, where a private /etc/passwd and
# /etc/group (the users the binary was built for), and the unpacked files
# at the paths compiled into it, are mounted. Both listen on loopback only
# and deliver every recipient of virt.dom into DIR/mail (a maildir, one
# file per recipient, the recipient in the first header: Exim's
# Envelope-to:, OpenSMTPD's Delivered-To: after Return-Path:). Both
# refuse r550@ (550 5.1.1) and r450@ (450 4.2.1) at RCPT.
# Facts this relies on: ../shared/MTA-NOTES.md ("More peers").
#
#   peer_fetch NAME PKG...    .debs into the cache, unpacked into
#                             PEER_CACHE/NAME/root (idempotent); libraries
#                             in PEER_LIBS_<name> only when not installed
#   ex_start DIR ADDR PORT [LINE...]   Exim; LINEs go into its main section
#   os_start DIR ADDR PORT [LINE...]   OpenSMTPD; LINEs go into smtpd.conf
#   peer_stop DIR            stop the peer started in DIR
PEER_CACHE=${AUTOTURN_PEER_CACHE:-/var/cache/autoturn-tests}
PEER_LIBS_exim="libidn12"
PEER_LIBS_opensmtpd="libevent-2.1-7"
PEER_UID_BASE=60900            # private users of the namespaces (this lane's range)

peer_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# peer_download CACHE PACKAGE... - .debs into CACHE unless already there
peer_download() {
  local cache=$1 p need=(); shift
  for p in "$@"; do
    ls "$cache/${p}_"*.deb >/dev/null 2>&1 || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  (cd "$cache" && apt-get -q -o APT::Sandbox::User=root download "${need[@]}") \
    >"$cache/download.log" 2>&1 && return 0
  grep -Eq 'Unable to locate package|has no installation candidate|Can.t select' \
    "$cache/download.log" || return 1
  apt-get -q update >>"$cache/download.log" 2>&1 || return 1
  (cd "$cache" && apt-get -q -o APT::Sandbox::User=root download "${need[@]}") \
    >>"$cache/download.log" 2>&1
}

peer_fetch_locked() {
  local name=$1 cache=$PEER_CACHE/$1 root=$PEER_CACHE/$1/root pkgs p f stamp libs; shift
  pkgs="$*"
  eval "libs=\${PEER_LIBS_$name:-}"
  for p in $libs; do peer_installed "$p" || pkgs="$pkgs $p"; done
  peer_download "$cache" $pkgs || { cat "$cache/download.log"; return 1; }
  stamp=$(for p in $pkgs; do ls "$cache/${p}_"*.deb | sort -V | tail -1; done | sort)
  [ -d "$root" ] && [ "$(cat "$root/.unpacked" 2>/dev/null)" = "$stamp" ] && return 0
  rm -rf "$root" && mkdir -p "$root" || return 1
  for f in $stamp; do dpkg -x "$f" "$root" || return 1; done
  mkdir -p "$root/usr/lib/x86_64-linux-gnu"
  printf '%s\n' "$stamp" >"$root/.unpacked"
}

peer_fetch() {
  local name=$1
  mkdir -p "$PEER_CACHE/$name" || return 1
  (flock 9 && peer_fetch_locked "$@") 9>"$PEER_CACHE/$name/.lock"
}

# peer_users DIR LINE... - DIR/passwd and DIR/group: the system's plus
# "name:uid" users (a uid of "nobody" maps the name onto nobody)
peer_users() {
  local dir=$1 u name uid; shift
  cp /etc/passwd "$dir/passwd" && cp /etc/group "$dir/group" || return 1
  for u in "$@"; do
    name=${u%%:*} uid=${u#*:}
    [ "$uid" = nobody ] && uid=$(id -u nobody)
    echo "$name:x:$uid:$uid:$name:/nonexistent:/usr/sbin/nologin" >>"$dir/passwd"
    echo "$name:x:$uid:" >>"$dir/group"
  done
}

# peer_run DIR SCRIPT - run SCRIPT (sh) in a new mount namespace, in the
# background, output to DIR/daemon.out; its pid in DIR/ns.pid
peer_run() {
  local dir=$1 script=$2
  unshare --mount --propagation private sh -c "$script" >"$dir/daemon.out" 2>&1 &
  echo $! >"$dir/ns.pid"
}

ex_start() {
  local dir=$1 addr=$2 port=$3 root=$PEER_CACHE/exim/root line; shift 3
  peer_fetch exim exim4-daemon-light exim4-base exim4-config || return 1
  mkdir -p "$dir/spool" "$dir/log" "$dir/mail" || return 1
  chown -R nobody "$dir/spool" "$dir/log" "$dir/mail"
  peer_users "$dir" Debian-exim:nobody || return 1
  {
    echo "keep_environment ="
    echo "exim_user = nobody"
    echo "exim_group = $(id -gn nobody)"
    echo "primary_hostname = exim.customer.test"
    echo "spool_directory = $dir/spool"
    echo "log_file_path = $dir/log/%slog"
    echo "local_interfaces = <; $addr"
    echo "host_lookup ="
    echo "rfc1413_hosts ="
    echo "tls_advertise_hosts ="
    echo "domainlist local_domains = virt.dom"
    echo "acl_smtp_rcpt = acl_check_rcpt"
    echo "message_size_limit = 50M"
    echo "smtp_accept_queue_per_connection = 0"   # deliver every message at once, no queue runner
    for line in "$@"; do echo "$line"; done
    cat <<CF
begin acl
acl_check_rcpt:
  deny local_parts = r550
       message = 550 5.1.1 no such user
  defer local_parts = r450
       message = 450 4.2.1 try later
  accept domains = +local_domains
  deny
begin routers
local:
  driver = accept
  domains = +local_domains
  transport = maildir
begin transports
maildir:
  driver = appendfile
  directory = $dir/mail
  maildir_format
  envelope_to_add
  user = nobody
  mode = 0644
CF
  } >"$dir/exim.conf"
  # Exim re-executes itself as /usr/sbin/exim4 to deliver: the unpacked
  # /usr/sbin (and libraries) are laid over the system's in the namespace
  peer_run "$dir" "
    mount --bind '$dir/passwd' /etc/passwd && mount --bind '$dir/group' /etc/group &&
    mount -t overlay overlay -o lowerdir='$root/usr/sbin:/usr/sbin' /usr/sbin &&
    mount -t overlay overlay -o lowerdir='$root/usr/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu' /usr/lib/x86_64-linux-gnu &&
    exec /usr/sbin/exim4 -C '$dir/exim.conf' -bdf -oX $port -oP '$dir/exim.pid'"
  wait_port "$addr" "$port" 20 || { cat "$dir/daemon.out" "$dir/log/paniclog" 2>/dev/null; return 1; }
}

os_start() {
  local dir=$1 addr=$2 port=$3 root=$PEER_CACHE/opensmtpd/root line; shift 3
  peer_fetch opensmtpd opensmtpd || return 1
  mkdir -p "$dir/mail" && chown nobody "$dir/mail" || return 1
  peer_users "$dir" opensmtpd:$((PEER_UID_BASE + 1)) opensmtpq:$((PEER_UID_BASE + 2)) || return 1
  {
    echo 'table vusers { "@" = "nobody" }'
    echo 'filter "r550" phase rcpt-to match rcpt-to regex "^r550@" reject "550 5.1.1 no such user"'
    echo 'filter "r450" phase rcpt-to match rcpt-to regex "^r450@" reject "450 4.2.1 try later"'
    for line in "$@"; do echo "$line"; done
    echo "listen on $addr port $port hostname os.customer.test filter { \"r550\", \"r450\" }"
    echo "action \"d\" maildir \"$dir/mail\" virtual <vusers>"
    echo 'match from any for domain "virt.dom" action "d"'
  } >"$dir/smtpd.conf"
  # its spool, chroot and socket paths are compiled in: private tmpfs there
  peer_run "$dir" "
    mount --bind '$dir/passwd' /etc/passwd && mount --bind '$dir/group' /etc/group &&
    mount -t tmpfs tmpfs /var/spool && mkdir -m 0711 /var/spool/smtpd &&
    mount -t tmpfs tmpfs /var/lib && mkdir -p /var/lib/opensmtpd/empty &&
    mount -t tmpfs tmpfs /run &&
    mount -t overlay overlay -o lowerdir='$root/usr/libexec:/usr/libexec' /usr/libexec &&
    mount -t overlay overlay -o lowerdir='$root/usr/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu' /usr/lib/x86_64-linux-gnu &&
    exec '$root/usr/sbin/smtpd' -d -f '$dir/smtpd.conf'"
  wait_port "$addr" "$port" 20 || { cat "$dir/daemon.out"; return 1; }
}

peer_stop() {
  local dir=$1 pid i
  pid=$(cat "$dir/ns.pid" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  # unshare execs sh, which execs the daemon: pid is the daemon itself;
  # its children (OpenSMTPD's processes, Exim's deliveries) end with it
  kill "$pid" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  pkill -9 -P "$pid" 2>/dev/null
  rm -f "$dir/ns.pid"
  return 0
}
