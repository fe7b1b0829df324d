# SPDX-License-Identifier: ISC
# t_deb.sh - the .deb: built by scripts/package, clean under lintian, and
# installed with apt into a clean Debian 12 root made with debootstrap
# (minbase; the mirror comes from this machine's apt sources), where
#   - the maintainer scripts made the autoturn user, the spool and state
#     directories (owner, mode) and a first customer table, and dpkg knows
#     the conffiles;
#   - the three daemons, started the way their systemd units start them
#     (ExecStart, Group= and RuntimeDirectory= read from the installed
#     units; chroot, no systemd) with the default configuration, answer:
#     policyd a real policy request, the milter a libmilter option
#     negotiation, the flusher "autoturnctl status"; the milter's and
#     policyd's flush requests reach the flusher (socket modes and groups);
#     SIGHUP reloads all three, and each keeps running;
#   - an edited configuration survives a reinstall and an upgrade, an
#     administrator's directory mode survives the upgrade;
#   - remove keeps the configuration; purge removes it and the state, and
#     keeps a spool that still holds mail.
# Daemon log lines come from a syslog receiver at ROOT/dev/log. Needs root,
# debootstrap and network access to the Debian mirror. Takes about a minute
# (debootstrap about 30 s).
: "${BUILDDIR:?set by ctest}"
export AUTOTURNCTL=${AUTOTURNCTL:-$BUILDDIR/ctl/autoturnctl}
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/package/lib.sh"

T0=$(date +%s)
BASE=$(mktemp -d /tmp/autoturn-pkg.XXXXXX)
R=$BASE/root
DAEMON_PIDS=()

stop_daemons() {
  local p
  for p in "${DAEMON_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${DAEMON_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  DAEMON_PIDS=()
}
cleanup() {
  stop_daemons
  pkg_syslog_stop
  pkg_umount_all
  pkg_safe_rm "$BASE"
  rm -rf "$WORK"
}
trap cleanup EXIT

in_root() { chroot "$R" "$@"; }
apt_in_root() {
  chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends "$@"
}

# --- build and lintian ---
if ! DEB=$(pkg_build deb); then
  fail "scripts/package --deb builds the .deb"
  finish; exit
fi
pass "scripts/package --deb builds $(basename "$DEB")"
LINT=$(lintian -I --pedantic "$DEB" 2>&1 | grep -v '^running with root privileges')
if printf '%s\n' "$LINT" | grep -q '^E: '; then
  fail "lintian: no errors" "$LINT"
else
  pass "lintian: no errors"
fi
# Accepted findings (docs/PACKAGING.md); anything else is new and must be
# looked at.
unexpected=$(printf '%s\n' "$LINT" | grep -E '^[WIPX]: ' |
  grep -vxF 'W: autoturn: non-standard-file-perm 0600 != 0644 [etc/autoturn/customers]' |
  grep -vE '^I: autoturn: package-supports-alternative-init-but-no-init\.d-script \[lib/systemd/system/autoturn-(milter|policyd|flusher)\.service\]$')
if [ -z "$unexpected" ]; then
  pass "lintian: only the accepted warnings and notes"
else
  fail "lintian: only the accepted warnings and notes" "$unexpected"
fi

# --- a clean Debian 12 root ---
t=$(date +%s)
if ! pkg_debootstrap "$R"; then
  fail "debootstrap a bookworm minbase root"
  finish; exit
fi
pass "debootstrap a bookworm minbase root ($(($(date +%s) - t)) s)"
pkg_mount proc proc "$R/proc"
pkg_syslog_start "$R/dev/log" "$BASE/syslog" || fail "syslog receiver at ROOT/dev/log"
cp "$DEB" "$R/tmp/"
DEBNAME=$(basename "$DEB")

# Postfix too: the policy service's socket lives in its queue directory
echo "postfix postfix/main_mailer_type select Local only" | chroot "$R" debconf-set-selections
run apt_in_root install postfix "/tmp/$DEBNAME"
expect "apt-get installs Postfix and the .deb with its dependencies from Debian" 0 "Setting up autoturn (0.1.0)"

# --- what the maintainer scripts did ---
run in_root getent passwd autoturn
if [[ "$OUT" =~ ^autoturn:x:[0-9]+:[0-9]+:[^:]*:/var/lib/autoturn:/usr/sbin/nologin$ ]]; then
  pass "system user autoturn (home /var/lib/autoturn, no login)"
else
  fail "system user autoturn (home /var/lib/autoturn, no login)" "getent: $OUT"
fi
run in_root getent passwd autoturn-odmr
if [[ "$OUT" =~ ^autoturn-odmr:x:[0-9]+:[0-9]+:[^:]*:/nonexistent:/usr/sbin/nologin$ ]]; then
  pass "system user autoturn-odmr for ODMR sessions before AUTH (no home, no login)"
else
  fail "system user autoturn-odmr" "getent: $OUT"
fi
AT_UID=$(in_root id -u autoturn) AT_GID=$(in_root getent group autoturn | cut -d: -f3)
[ -n "$AT_UID" ] && [ "$AT_UID" -lt 1000 ] && pass "autoturn is a system uid ($AT_UID)" ||
  fail "autoturn is a system uid" "uid: $AT_UID"
[ "$(in_root id -gn autoturn)" = autoturn ] && pass "primary group autoturn" ||
  fail "primary group autoturn" "$(in_root id autoturn)"

run in_root dpkg-query -W -f='${Conffiles}\n' autoturn
if printf '%s\n' "$OUT" | grep -Eq '^ /etc/autoturn/autoturn\.conf [0-9a-f]{32}$' &&
   printf '%s\n' "$OUT" | grep -Eq '^ /etc/autoturn/customers [0-9a-f]{32}$'; then
  pass "dpkg registers /etc/autoturn/autoturn.conf and /etc/autoturn/customers as conffiles"
else
  fail "dpkg registers the conffiles" "$OUT"
fi

check_stat() {  # LABEL PATH WANT(owner:group mode)
  local got
  got=$(in_root stat -c '%U:%G %a' "$2" 2>&1)
  [ "$got" = "$3" ] && pass "$1: $2 is $3" || fail "$1: $2" "got $got, want $3"
}
check_stat "spool" /var/spool/autoturn "autoturn:autoturn 700"
check_stat "state dir (set-group-id)" /var/lib/autoturn "autoturn:autoturn 2750"
check_stat "first table, compiled by postinst" /var/lib/autoturn/customers.cdb "root:autoturn 640"
check_stat "customer source" /etc/autoturn/customers "root:root 600"
check_stat "configuration" /etc/autoturn/autoturn.conf "root:root 644"
for p in autoturn-milter autoturn-policyd autoturn-flusher autoturnctl; do
  [ -x "$R/usr/sbin/$p" ] && pass "/usr/sbin/$p" || fail "/usr/sbin/$p"
done
for m in man5/autoturn.conf.5 man5/autoturn-customers.5 man7/autoturn.7 man8/autoturn-milter.8 \
         man8/autoturn-policyd.8 man8/autoturn-flusher.8 man8/autoturnctl.8; do
  [ -f "$R/usr/share/man/$m.gz" ] && pass "man page $m" || fail "man page $m"
done
run in_root autoturnctl check-config
expect "the installed configuration is valid" 0 "/etc/autoturn/autoturn.conf: ok"

# --- the daemons, started as their units start them ---
# Customers: acme (AutoTURN on connect, from 192.0.2.10) and beta (ETRN,
# from 192.0.2.20).
cat >>"$R/etc/autoturn/customers" <<'EOF'
customer acme
    domain       virt.dom
    address      192.0.2.10
    trigger      connect
customer beta
    domain       beta.example
    address      192.0.2.20
    trigger      etrn
EOF
run in_root autoturnctl compile
expect "autoturnctl compile in the root" 0 "/etc/autoturn/customers -> /var/lib/autoturn/customers.cdb: 2 customers, 2 domains, 2 networks"
check_stat "recompiled table" /var/lib/autoturn/customers.cdb "root:autoturn 640"

unit_value() {  # UNIT KEY: the value of KEY= in the installed unit
  sed -n "s/^$2=//p" "$R/lib/systemd/system/$1.service" | tail -n 1
}

start_daemons() {
  local d unit exec group rundir runmode
  for d in milter policyd flusher; do
    unit=autoturn-$d
    exec=$(unit_value "$unit" ExecStart) group=$(unit_value "$unit" Group)
    rundir=$(unit_value "$unit" RuntimeDirectory) runmode=$(unit_value "$unit" RuntimeDirectoryMode)
    if [ -z "$exec" ] || [ -z "$group" ] || [ -z "$rundir" ] || [ -z "$runmode" ]; then
      fail "$unit.service has ExecStart, Group, RuntimeDirectory, RuntimeDirectoryMode"
      return 1
    fi
    [ -d "$R/run/$rundir" ] ||
      install -d -o 0 -g "$(in_root getent group "$group" | cut -d: -f3)" -m "$runmode" "$R/run/$rundir"
    # shellcheck disable=SC2086  # ExecStart is a command line
    chroot "$R" setpriv --regid="$group" --clear-groups -- $exec >>"$BASE/$d.out" 2>&1 &
    DAEMON_PIDS+=($!)
  done
}

start_daemons
if pkg_wait_for "$BASE/syslog" 'autoturn-milter\[[0-9]+\]: starting: listening on unix:/run/autoturn/milter.sock' &&
   pkg_wait_for "$BASE/syslog" 'autoturn-policyd\[[0-9]+\]: started: 1 policy listener' &&
   pkg_wait_for "$BASE/syslog" 'autoturn-flusher\[[0-9]+\]: started: control /run/autoturn/flusher.sock'; then
  pass "the three daemons start with the default configuration"
else
  fail "the three daemons start with the default configuration" "$(cat "$BASE"/*.out "$BASE/syslog")"
fi
if grep -Eq 'warning|error' "$BASE/syslog"; then
  fail "no warnings at start-up" "$(cat "$BASE/syslog")"
else
  pass "no warnings at start-up"
fi

i=0
for d in milter policyd flusher; do
  p=${DAEMON_PIDS[$i]}; i=$((i + 1))
  ids=$(awk '/^Uid:|^Gid:/ { print $2, $3, $4, $5 }' "/proc/$p/status" 2>/dev/null | tr '\n' ' ')
  want="$AT_UID $AT_UID $AT_UID $AT_UID $AT_GID $AT_GID $AT_GID $AT_GID "
  [ "$ids" = "$want" ] && pass "autoturn-$d runs as autoturn:autoturn (real, effective, saved)" ||
    fail "autoturn-$d runs as autoturn:autoturn" "Uid/Gid: $ids, want $want"
done
for s in milter.sock policyd-control.sock flusher.sock; do
  check_stat "socket" "/run/autoturn/$s" "root:autoturn 660"
done
check_stat "the policy socket, in Postfix's private/" /var/spool/postfix/private/autoturn-policy \
  "root:postfix 660"

run python3 - "$R/var/spool/postfix/private/autoturn-policy" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
          b"client_address=203.0.113.9\nclient_name=unknown\nhelo_name=client.example\n"
          b"sender=a@example.org\nrecipient=b@example.net\n\n")
reply = b""
while not reply.endswith(b"\n\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
sys.stdout.write(reply.decode())
PY
expect_line "policyd answers a policy request (unknown client: DUNNO)" out "action=DUNNO"

run python3 - "$R/var/spool/postfix/private/autoturn-policy" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"request=smtpd_access_policy\nprotocol_state=ETRN\nprotocol_name=ESMTP\n"
          b"client_address=192.0.2.20\nclient_name=unknown\nhelo_name=beta.example\n"
          b"etrn_domain=beta.example\n\n")
sys.stdout.write(s.recv(4096).decode())
PY
expect_line "policyd answers ETRN from beta's address" out "action=DUNNO"
if pkg_wait_for "$BASE/syslog" 'autoturn-flusher\[[0-9]+\]: customer=beta: flush started \(pid [0-9]+, reason=etrn, to=192\.0\.2\.20\)'; then
  pass "policyd's flush request reaches the flusher (reason=etrn)"
else
  fail "policyd's flush request reaches the flusher (reason=etrn)" "$(cat "$BASE/syslog")"
fi

run python3 - "$R/run/autoturn/milter.sock" <<'PY'
import socket, struct, sys
def send(s, cmd, data=b""):
    s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)
def recv(s):
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    n = struct.unpack(">I", head)[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return body
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
# Offer everything but SMFIP_NR_CONN (0x1000), so that the milter must
# answer the connect: its answer means the connect was handled.
send(s, b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF & ~0x1000))
reply = recv(s)
version, actions, protocol = struct.unpack(">III", reply[1:13])
print("optneg %s version %d" % (reply[:1].decode(), version))
# SMFIC_CONNECT: hostname, family '4', port, address
send(s, b"C", b"mail.virt.dom\x004" + struct.pack(">H", 40000) + b"192.0.2.10\x00")
print("connect reply %s" % recv(s)[:1].decode())
send(s, b"Q")
PY
expect_line "the milter answers a libmilter option negotiation (version 6)" out "optneg O version 6"
expect_line "the milter answers a connect (continue)" out "connect reply c"
if pkg_wait_for "$BASE/syslog" 'autoturn-flusher\[[0-9]+\]: customer=acme: flush started \(pid [0-9]+, reason=connect, to=192\.0\.2\.10\)'; then
  pass "the milter's connect notice reaches the flusher (reason=connect)"
else
  fail "the milter's connect notice reaches the flusher (reason=connect)" "$(cat "$BASE/syslog")"
fi

run in_root autoturnctl status
expect "autoturnctl status: the flusher answers" 0 "autoturn-flusher: 0 of at most 20 flushes running, up "

kill -HUP "${DAEMON_PIDS[0]}" "${DAEMON_PIDS[1]}" "${DAEMON_PIDS[2]}"
if pkg_wait_for "$BASE/syslog" 'autoturn-milter\[[0-9]+\]: /etc/autoturn/autoturn.conf: reloaded' &&
   pkg_wait_for "$BASE/syslog" 'autoturn-policyd\[[0-9]+\]: /etc/autoturn/autoturn.conf: reloaded' &&
   pkg_wait_for "$BASE/syslog" 'autoturn-flusher\[[0-9]+\]: /etc/autoturn/autoturn.conf: reloaded'; then
  pass "SIGHUP (ExecReload) reloads the milter, policyd and the flusher"
else
  fail "SIGHUP (ExecReload) reloads the milter, policyd and the flusher" "$(cat "$BASE/syslog")"
fi
kill -0 "${DAEMON_PIDS[0]}" && kill -0 "${DAEMON_PIDS[1]}" && kill -0 "${DAEMON_PIDS[2]}" &&
  pass "after SIGHUP all three still run" || fail "after SIGHUP all three still run"
stop_daemons

# --- edits survive a reinstall and an upgrade ---
EDIT='# local edit (t_deb.sh)'
printf '%s\n' "$EDIT" >>"$R/etc/autoturn/autoturn.conf"
EDITED_CONF=$(md5sum <"$R/etc/autoturn/autoturn.conf")
EDITED_CUST=$(md5sum <"$R/etc/autoturn/customers")
run apt_in_root install --reinstall "/tmp/$DEBNAME"
expect "apt-get reinstalls the same .deb" 0 "Setting up autoturn (0.1.0)"
[ "$(md5sum <"$R/etc/autoturn/autoturn.conf")" = "$EDITED_CONF" ] &&
  pass "reinstall keeps the edited autoturn.conf" || fail "reinstall keeps the edited autoturn.conf"
[ "$(md5sum <"$R/etc/autoturn/customers")" = "$EDITED_CUST" ] &&
  pass "reinstall keeps the edited customer source" || fail "reinstall keeps the edited customer source"
run in_root autoturnctl customers
if printf '%s\n' "$OUT" | grep -q '^acme ' && printf '%s\n' "$OUT" | grep -q '^beta '; then
  pass "reinstall keeps the compiled table"
else
  fail "reinstall keeps the compiled table" "$OUT" "$ERR"
fi

# An upgrade: the same package as version 0.1.0+t1 (repacked, contents
# unchanged), over a spool whose mode the administrator changed.
rm -rf "$BASE/repack"
dpkg-deb -R "$DEB" "$BASE/repack"
sed -i 's/^Version: .*/Version: 0.1.0+t1/' "$BASE/repack/DEBIAN/control"
dpkg-deb -b "$BASE/repack" "$R/tmp/autoturn_0.1.0+t1.deb" >/dev/null
in_root chmod 0750 /var/spool/autoturn
run apt_in_root install "/tmp/autoturn_0.1.0+t1.deb"
expect "apt-get upgrades to 0.1.0+t1" 0 "Unpacking autoturn (0.1.0+t1) over (0.1.0)"
[ "$(md5sum <"$R/etc/autoturn/autoturn.conf")" = "$EDITED_CONF" ] &&
  pass "upgrade keeps the edited autoturn.conf" || fail "upgrade keeps the edited autoturn.conf"
[ ! -e "$R/etc/autoturn/autoturn.conf.dpkg-new" ] && [ ! -e "$R/etc/autoturn/autoturn.conf.dpkg-dist" ] &&
  pass "no .dpkg-new/.dpkg-dist beside it (unchanged conffile)" ||
  fail "no .dpkg-new/.dpkg-dist beside it" "$(ls "$R/etc/autoturn")"
check_stat "upgrade keeps the administrator's mode" /var/spool/autoturn "autoturn:autoturn 750"

# --- remove and purge ---
run apt_in_root remove autoturn
expect "apt-get remove" 0 "Removing autoturn (0.1.0+t1)"
[ ! -e "$R/usr/sbin/autoturn-flusher" ] && pass "remove: programs gone" || fail "remove: programs gone"
[ "$(md5sum <"$R/etc/autoturn/autoturn.conf")" = "$EDITED_CONF" ] &&
  pass "remove keeps the configuration" || fail "remove keeps the configuration"
[ -d "$R/var/spool/autoturn" ] && [ -f "$R/var/lib/autoturn/customers.cdb" ] &&
  pass "remove keeps the spool and the state" || fail "remove keeps the spool and the state"
run in_root dpkg-query -W -f='${Status}\n' autoturn
expect_line "remove leaves config-files" out "deinstall ok config-files"

# purge while mail is held: the spool (and the mail) stays
install -d -o "$AT_UID" -g "$AT_GID" -m 0700 "$R/var/spool/autoturn/acme/new"
printf 'X-Test: held\n\nbody\n' >"$R/var/spool/autoturn/acme/new/1.test"
run apt_in_root purge autoturn
expect "apt-get purge with mail held" 0 "" "autoturn: /var/spool/autoturn still holds mail; it was not removed"
[ ! -e "$R/etc/autoturn" ] && pass "purge removes /etc/autoturn" || fail "purge removes /etc/autoturn" "$(ls -la "$R/etc/autoturn")"
[ ! -e "$R/var/lib/autoturn" ] && pass "purge removes /var/lib/autoturn" || fail "purge removes /var/lib/autoturn"
[ -f "$R/var/spool/autoturn/acme/new/1.test" ] && pass "purge keeps held mail" || fail "purge keeps held mail"
in_root getent passwd autoturn >/dev/null && pass "purge keeps the autoturn user (files may remain)" ||
  fail "purge keeps the autoturn user"

# purge with an empty spool: everything goes
rm -rf "$R/var/spool/autoturn/acme"
run apt_in_root install "/tmp/$DEBNAME"
expect "install again" 0 "Setting up autoturn (0.1.0)"
run apt_in_root purge autoturn
expect "apt-get purge with nothing held" 0 "Purging configuration files for autoturn (0.1.0)"
[ ! -e "$R/var/spool/autoturn" ] && [ ! -e "$R/var/lib/autoturn" ] && [ ! -e "$R/etc/autoturn" ] &&
  pass "purge with nothing held removes spool, state and configuration" ||
  fail "purge with nothing held removes spool, state and configuration" "$(ls -d "$R"/var/spool/autoturn "$R"/var/lib/autoturn "$R"/etc/autoturn 2>&1)"

echo "# t_deb.sh took $(($(date +%s) - T0)) s"
finish
