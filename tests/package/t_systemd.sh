# SPDX-License-Identifier: ISC
# t_systemd.sh - the systemd units of the .deb under a real systemd: a
# clean Debian 12 root (debootstrap minbase, mirror from this machine's apt
# sources) with systemd, Postfix ("Local only") and the .deb, booted with
# systemd-nspawn. Checks what only systemd shows:
#   - postinst enabled the three units and they start at boot;
#   - each daemon runs as autoturn, with the capability bounding set, the
#     seccomp filter and NoNewPrivileges the unit asks for (the flusher
#     without NoNewPrivileges), sockets root:autoturn 0660 in /run/autoturn;
#   - Type=notify: each daemon told systemd it is ready (its STATUS= text
#     is what systemd shows);
#   - "systemctl reload" reloads all three (ExecReload, RELOADING=1/READY=1),
#     and SIGHUP ("systemctl kill -s HUP") leaves each running, same PID,
#     no restart;
#   - the milter comes back after a clean exit (Restart=always);
#   - stopping one unit keeps /run/autoturn and the others' sockets;
#   - wired to the container's Postfix as shipped (Debian's defaults: smtpd
#     chrooted; the policy service on unix:private/autoturn-policy inside
#     Postfix's queue directory, the milter on loopback TCP), mail for
#     acme's domain is held; flushed to
#     acme's server (an smtp-sink in the container that refuses after DATA)
#     it bounces, and the bounce from the sandboxed flusher goes through
#     Postfix's setgid postdrop into root's mailbox.
# Needs root, debootstrap, systemd-nspawn and network access to the Debian
# mirror. Takes about a minute. AUTOTURN_PKG_KEEP=1 leaves the container
# running (and says how to enter it) for a look after a failure.
: "${BUILDDIR:?set by ctest}"
export AUTOTURNCTL=${AUTOTURNCTL:-$BUILDDIR/ctl/autoturnctl}
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/package/lib.sh"

T0=$(date +%s)
BASE=$(mktemp -d /tmp/autoturn-pkg.XXXXXX)
R=$BASE/root
MACHINE=autoturn-${BASE##*.}
NSPAWN_PID=

cleanup() {
  if [ "${AUTOTURN_PKG_KEEP:-}" = 1 ]; then
    echo "# kept: $BASE (enter with: nsenter -t $CT_INIT -a bash; stop with: kill $NSPAWN_PID)"
    return
  fi
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    in_ct systemctl poweroff >/dev/null 2>&1
    for _ in $(seq 1 300); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$NSPAWN_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NSPAWN_PID" 2>/dev/null
    wait "$NSPAWN_PID" 2>/dev/null
  fi
  pkg_umount_all
  rm -rf "/run/systemd/nspawn/propagate/$MACHINE"
  pkg_safe_rm "$BASE"
  rm -rf "$WORK"
}
trap cleanup EXIT

CT_INIT=
in_ct() { nsenter -t "$CT_INIT" -a "$@"; }
status_of() {  # DAEMON FIELD: a field of /proc/PID/status of the daemon
  local pid
  pid=$(in_ct pidof "$1") || return 1
  in_ct awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$pid/status"
}

# --- build, root, packages ---
if ! DEB=$(pkg_build deb); then
  fail "scripts/package --deb builds the .deb"
  finish; exit
fi
pass "scripts/package --deb builds $(basename "$DEB")"
command -v systemd-nspawn >/dev/null || { fail "systemd-nspawn is installed (scripts/deps)"; finish; exit; }

t=$(date +%s)
if ! pkg_debootstrap "$R"; then
  fail "debootstrap a bookworm minbase root"
  finish; exit
fi
pass "debootstrap a bookworm minbase root ($(($(date +%s) - t)) s)"
pkg_mount proc proc "$R/proc"
cp "$DEB" "$R/tmp/"
echo "postfix postfix/main_mailer_type select Local only" | chroot "$R" debconf-set-selections
run chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends \
  install systemd systemd-sysv dbus postfix "/tmp/$(basename "$DEB")"
expect "apt-get installs systemd, Postfix and the .deb" 0 "Setting up autoturn (0.1.0)"
pkg_umount_all
cat >>"$R/etc/autoturn/customers" <<'EOF'
customer acme
    domain       virt.dom
    delivery     host 127.0.0.1:2525
    trigger      etrn
EOF
run chroot "$R" autoturnctl compile
expect "customer acme compiled" 0 "1 customers, 1 domains, 0 networks"

# --- boot ---
# Its own network namespace (loopback only): Postfix, the listeners and the
# sink never meet anything on this machine.
NSPAWN_ARGS=(-D "$R" -b --machine="$MACHINE" --register=no --private-network)
# Without systemd on the host there is no one to ask for a scope: stay in ours.
[ -d /run/systemd/system ] || NSPAWN_ARGS+=(--keep-unit)
systemd-nspawn "${NSPAWN_ARGS[@]}" </dev/null >"$BASE/console.log" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 1 300); do
  for c in $(pgrep -P "$NSPAWN_PID"); do
    [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && CT_INIT=$c
  done
  [ -n "$CT_INIT" ] && break
  sleep 0.1
done
if [ -z "$CT_INIT" ]; then
  fail "systemd-nspawn boots the root" "$(cat "$BASE/console.log")"
  finish; exit
fi
# systemd answers on its private socket only once it is up
for _ in $(seq 1 600); do
  in_ct test -S /run/systemd/private && break
  sleep 0.1
done
state=$(timeout 120 nsenter -t "$CT_INIT" -a systemctl is-system-running --wait 2>&1)
[ "$state" = running ] && pass "the root boots under systemd (running)" ||
  fail "the root boots under systemd" "state: $state" "$(in_ct systemctl --failed --no-pager 2>&1)"

for d in milter policyd flusher; do
  run in_ct systemctl is-enabled "autoturn-$d"
  expect_line "autoturn-$d.service is enabled by postinst" out "enabled"
  run in_ct systemctl is-active "autoturn-$d"
  expect_line "autoturn-$d.service is active after boot" out "active"
done

# --- identity and sandbox, as /proc shows them ---
AT_UID=$(in_ct id -u autoturn) AT_GID=$(in_ct getent group autoturn | cut -d: -f3)
for d in milter policyd flusher; do
  p=autoturn-$d
  got="$(status_of "$p" Uid | tr -s '\t ' ' ') / $(status_of "$p" Gid | tr -s '\t ' ' ') / $(status_of "$p" Groups | tr -s '\t ' ' ')"
  want="$AT_UID $AT_UID $AT_UID $AT_UID / $AT_GID $AT_GID $AT_GID $AT_GID / $AT_GID"
  [ "$got" = "$want" ] && pass "$p runs as autoturn:autoturn, no other groups" || fail "$p runs as autoturn" "got $got" "want $want"
  [ "$(status_of "$p" CapEff)" = 0000000000000000 ] && pass "$p has no effective capabilities" ||
    fail "$p has no effective capabilities" "$(status_of "$p" CapEff)"
  [ "$(status_of "$p" Seccomp)" = 2 ] && pass "$p runs under a seccomp filter" ||
    fail "$p runs under a seccomp filter" "Seccomp: $(status_of "$p" Seccomp)"
done
# CAP_CHOWN 0, CAP_DAC_OVERRIDE 1, CAP_DAC_READ_SEARCH 2, CAP_SETGID 6, CAP_SETUID 7,
# CAP_NET_BIND_SERVICE 10
[ "$(status_of autoturn-milter CapBnd)" = 00000000000000c5 ] &&
  pass "milter: bounding set chown, dac_read_search, setgid, setuid" ||
  fail "milter bounding set" "$(status_of autoturn-milter CapBnd)"
[ "$(status_of autoturn-policyd CapBnd)" = 00000000000000c7 ] &&
  pass "policyd: bounding set adds dac_override (its socket in Postfix's private/)" ||
  fail "policyd bounding set" "$(status_of autoturn-policyd CapBnd)"
[ "$(status_of autoturn-flusher CapBnd)" = 00000000000004c5 ] &&
  pass "flusher: bounding set adds net_bind_service" || fail "flusher bounding set" "$(status_of autoturn-flusher CapBnd)"
[ "$(status_of autoturn-milter NoNewPrivs)" = 1 ] && [ "$(status_of autoturn-policyd NoNewPrivs)" = 1 ] &&
  pass "milter and policyd: NoNewPrivileges" || fail "milter and policyd: NoNewPrivileges"
[ "$(status_of autoturn-flusher NoNewPrivs)" = 0 ] &&
  pass "flusher: no NoNewPrivileges (setgid postdrop)" || fail "flusher: no NoNewPrivileges"
run in_ct stat -c '%U:%G %a %n' /run/autoturn /run/autoturn/milter.sock \
  /run/autoturn/policyd-control.sock /run/autoturn/flusher.sock /var/spool/postfix/private/autoturn-policy
[ "$OUT" = "root:autoturn 755 /run/autoturn
root:autoturn 660 /run/autoturn/milter.sock
root:autoturn 660 /run/autoturn/policyd-control.sock
root:autoturn 660 /run/autoturn/flusher.sock
root:postfix 660 /var/spool/postfix/private/autoturn-policy" ] &&
  pass "/run/autoturn root:autoturn 755, sockets root:autoturn 660; the policy socket root:postfix 660 in Postfix's private/" ||
  fail "/run/autoturn and the sockets" "$OUT" "$ERR"
run in_ct sh -c 'nsenter -t $(pidof autoturn-policyd) -m touch /etc/autoturn/y'
[[ "$ERR" == *"touch: cannot touch '/etc/autoturn/y': Read-only file system"* ]] &&
  pass "ProtectSystem=strict: /etc is read-only for the daemons" || fail "ProtectSystem=strict" "$OUT" "$ERR"

# --- readiness, reload, SIGHUP, restart, stop one ---
prop() { in_ct systemctl show -p "$2" --value "autoturn-$1"; }
declare -A READY_TEXT=([milter]="filtering" [policyd]="serving policy requests" [flusher]="accepting flush requests")
for d in milter policyd flusher; do
  [ "$(prop "$d" Type)" = notify ] && [ "$(prop "$d" StatusText)" = "${READY_TEXT[$d]}" ] &&
    pass "autoturn-$d: Type=notify, ready by sd_notify (status: ${READY_TEXT[$d]})" ||
    fail "autoturn-$d ready by sd_notify" "Type=$(prop "$d" Type) StatusText=$(prop "$d" StatusText)"
done
declare -A PID0
for d in milter policyd flusher; do PID0[$d]=$(prop "$d" MainPID); done
reloads() { in_ct journalctl -q --no-pager -o cat -u "autoturn-$1" | grep -c '^/etc/autoturn/autoturn.conf: reloaded ('; }
run in_ct systemctl reload autoturn-milter autoturn-policyd autoturn-flusher
expect "systemctl reload autoturn-milter autoturn-policyd autoturn-flusher" 0
run in_ct journalctl -q --no-pager -o cat -u autoturn-milter -u autoturn-policyd -u autoturn-flusher
printf '%s\n' "$OUT" | grep -q '^/etc/autoturn/autoturn.conf: reloaded (listen' &&
printf '%s\n' "$OUT" | grep -q '^/etc/autoturn/autoturn.conf: reloaded (sockets' &&
printf '%s\n' "$OUT" | grep -q '^/etc/autoturn/autoturn.conf: reloaded (control socket' &&
  pass "the three daemons log the reload" || fail "the three daemons log the reload" "$OUT"
for d in milter policyd flusher; do
  before=$(reloads "$d")
  run in_ct systemctl kill -s HUP --kill-who=main "autoturn-$d"
  for _ in $(seq 1 100); do [ "$(reloads "$d")" -gt "$before" ] && break; sleep 0.1; done
  sleep 0.5
  [ "$(reloads "$d")" -gt "$before" ] && [ "$(prop "$d" ActiveState)" = active ] &&
    [ "$(prop "$d" MainPID)" = "${PID0[$d]}" ] && [ "$(prop "$d" NRestarts)" = 0 ] &&
    [ "$(prop "$d" StatusText)" = "${READY_TEXT[$d]}" ] &&
    pass "autoturn-$d: SIGHUP reloads; still active, same PID, no restart" ||
    fail "autoturn-$d survives SIGHUP" "reloads $(reloads "$d") (before $before)" \
      "$(prop "$d" ActiveState) pid $(prop "$d" MainPID) (was ${PID0[$d]}) restarts $(prop "$d" NRestarts)"
done
# a clean exit that nobody asked systemd for (the daemon's own SIGTERM
# handling: it exits 0): only Restart=always brings it back
run in_ct systemctl kill -s TERM --kill-who=main autoturn-milter
back() { [ "$(prop milter ActiveState)" = active ] && [ "$(prop milter MainPID)" != "${PID0[milter]}" ] &&
         [ "$(prop milter MainPID)" != 0 ]; }
# libmilter notices the stop within 5 s (its select timeout); then the
# restart, and READY=1 from the new process
deadline=$(($(date +%s) + 90))
until back || [ "$(date +%s)" -gt "$deadline" ]; do sleep 0.2; done
back && [ "$(prop milter NRestarts)" = 1 ] && pass "the milter, stopped cleanly by SIGTERM, is started again (Restart=always)" ||
  fail "Restart=always for the milter" "$(prop milter ActiveState)/$(prop milter SubState) pid $(prop milter MainPID) restarts $(prop milter NRestarts)" \
    "$(in_ct journalctl -q --no-pager -o short-monotonic -u autoturn-milter | tail -n 15)" \
    "$(in_ct ps -eo pid,stat,wchan:24,cmd | grep -v ' \[' | tail -n 25)"
run in_ct systemctl stop autoturn-milter
expect "systemctl stop autoturn-milter" 0
in_ct test -S /run/autoturn/flusher.sock && in_ct test -S /run/autoturn/policyd-control.sock &&
  pass "/run/autoturn and the other sockets stay (RuntimeDirectoryPreserve)" ||
  fail "/run/autoturn stays" "$(in_ct ls -la /run/autoturn 2>&1)"
run in_ct systemctl start autoturn-milter
expect "systemctl start autoturn-milter" 0
run in_ct systemctl is-active autoturn-milter
expect_line "the milter runs again" out "active"

# --- wired to the system Postfix: held, then bounced ---
# Debian's Postfix runs smtpd and cleanup chrooted in /var/spool/postfix.
# The policy service's shipped socket is inside it (unix:private/
# autoturn-policy); /run/autoturn is out of reach, so the milter listens
# on loopback TCP here (docs/PACKAGING.md). "Local only" sets
# relay_transport = error, which makes smtpd refuse relay_domains at RCPT.
sed -i -e 's|^    # listen = { "unix:/run/autoturn/milter.sock:0660" }$|    listen = { "inet:127.0.0.1:8891" }|' \
       "$R/etc/autoturn/autoturn.conf"
run in_ct autoturnctl check-config
expect "autoturn.conf with a loopback milter listener is valid" 0 "/etc/autoturn/autoturn.conf: ok"
run in_ct systemctl restart autoturn-milter
expect "restart the milter" 0
run in_ct sh -c 'postconf -e "smtpd_milters = inet:127.0.0.1:8891" "milter_default_action = tempfail" \
  "relay_domains = virt.dom" "relay_transport = smtp" \
  "smtpd_relay_restrictions = check_policy_service unix:private/autoturn-policy, permit_mynetworks, reject_unauth_destination" &&
  systemctl reload postfix'
expect "Postfix: smtpd_milters on loopback, check_policy_service on the shipped socket" 0
run in_ct bash -s <<'SMTP'
exec 3<>/dev/tcp/127.0.0.1/25
reply() { local l; while IFS= read -r l <&3; do l=${l%$'\r'}; echo "$l"; [[ $l =~ ^[0-9]{3}\  ]] && break; done; }
say() { printf '%s\r\n' "$1" >&3; reply; }
reply
say "EHLO client.example"
say "MAIL FROM:<root@localhost>"
say "RCPT TO:<u@virt.dom>"
say "DATA"
say $'Subject: held\r\n\r\nbody\r\n.'
say "QUIT"
SMTP
if printf '%s\n' "$OUT" | grep -q '^250 2\.1\.5 Ok$' && printf '%s\n' "$OUT" | grep -q '^250 2\.0\.0 Ok: queued as '; then
  pass "Postfix accepts mail for virt.dom (policy service and milter consulted)"
else
  fail "Postfix accepts mail for virt.dom" "$OUT" "$(in_ct journalctl -q --no-pager -o short --since -1min | tail -n 20)"
fi
for _ in $(seq 1 50); do in_ct autoturnctl queue 2>/dev/null | grep -q '^acme  *1 ' && break; sleep 0.1; done
run in_ct autoturnctl queue
expect_line "the milter holds it for acme" out "-- 1 message, $(printf '%s\n' "$OUT" | awk '$1 == "acme" { print $3 }') bytes held for 1 customer"
[[ "$OUT" =~ (^|$'\n')acme\ +1\  ]] && pass "autoturnctl queue: acme 1 message" || fail "autoturnctl queue: acme 1 message" "$OUT"

# A transient unit of the container's systemd: a process that nsenter
# started and waits for would stop nsenter at the container's shutdown
# (systemd-shutdown SIGSTOPs everything) and hang it.
run in_ct systemd-run --quiet --unit=t-sink /usr/sbin/smtp-sink -u nobody -f . 127.0.0.1:2525 10
expect "smtp-sink as acme's server, refusing after DATA" 0
for _ in $(seq 1 50); do in_ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525' 2>/dev/null && break; sleep 0.1; done
run in_ct autoturnctl flush acme --wait
expect "the flush bounces it (5xx after DATA)" 0 "delivered 0, deferred 0, bounced 1"
for _ in $(seq 1 100); do grep -q '^Subject: Undelivered Mail Returned to Sender' "$R/var/mail/root" 2>/dev/null && break; sleep 0.1; done
grep -q '^Subject: Undelivered Mail Returned to Sender' "$R/var/mail/root" 2>/dev/null &&
  pass "the bounce reaches root's mailbox through sendmail/postdrop" ||
  fail "the bounce reaches root's mailbox" "$(in_ct journalctl -q --no-pager -o short --since -1min 2>&1 | tail -n 30)"
run in_ct journalctl -q --no-pager -o cat
if printf '%s\n' "$OUT" | grep -q 'postdrop.*Permission denied'; then
  fail "no postdrop permission errors" "$(printf '%s\n' "$OUT" | grep postdrop)"
else
  pass "no postdrop permission errors"
fi

echo "# t_systemd.sh took $(($(date +%s) - T0)) s"
finish
