# SPDX-License-Identifier: ISC
# t_rpm.sh - the .rpm: built by scripts/package (rpmbuild from Debian's
# rpm package), clean under rpmlint (with packaging/rpm/rpmlint.toml),
# with the expected files, modes, owners and %config(noreplace) flags,
# scriptlets that create the autoturn user and never write to /etc/autoturn,
# and sane requirements. Then rpm itself (rpm --root, scriptlets off: the
# root has no shell) shows what %config(noreplace) does with an edited
# configuration on a reinstall and on an upgrade whose autoturn.conf
# changed: the edit stays, the new file comes as .rpmnew. The upgrade
# package is built from the same tarball with Release 2 and one more line
# in autoturn.conf.
: "${BUILDDIR:?set by ctest}"
export AUTOTURNCTL=${AUTOTURNCTL:-$BUILDDIR/ctl/autoturnctl}
. "$SRCDIR/tests/cli/lib.sh"
. "$SRCDIR/tests/package/lib.sh"

T0=$(date +%s)
PKG_BUILD_DIR=
cleanup() {
  case $PKG_BUILD_DIR in /tmp/autoturn-pkgbuild.*) rm -rf "$PKG_BUILD_DIR" ;; esac
  rm -rf "$WORK"
}
trap cleanup EXIT

# pkg_build runs in a command substitution (a subshell): read the kept
# directory from its log afterwards.
RPM=$(pkg_build rpm -k)
rc=$?
PKG_BUILD_DIR=$(sed -n 's/^package: build directory kept: //p' "$WORK/package-rpm.log")
if [ $rc -ne 0 ]; then
  fail "scripts/package --rpm builds the .rpm"
  finish; exit
fi
pass "scripts/package --rpm builds $(basename "$RPM")"
[[ "$(basename "$RPM")" =~ ^autoturn-0\.1\.0-1\.[a-z0-9_]+\.rpm$ ]] &&
  pass "named autoturn-0.1.0-1.ARCH.rpm" || fail "named autoturn-0.1.0-1.ARCH.rpm" "$RPM"

# --- rpmlint ---
run rpmlint -c "$SRCDIR/packaging/rpm/rpmlint.toml" "$RPM"
if printf '%s\n' "$OUT" | grep -q ': E: ' || ! printf '%s\n' "$OUT" | grep -q ' 0 errors, '; then
  fail "rpmlint: no errors" "$OUT" "$ERR"
else
  pass "rpmlint: no errors"
fi
# Accepted warnings (docs/PACKAGING.md); anything else is new.
unexpected=$(printf '%s\n' "$OUT" | grep ': W: ' |
  grep -vE ': W: unstripped-binary-or-object /usr/sbin/(autoturn-milter|autoturn-policyd|autoturn-flusher|autoturnctl)$' |
  grep -vE ': W: non-standard-(uid|gid) /var/(spool|lib)/autoturn autoturn$' |
  grep -vE ': W: no-manual-page-for-binary (autoturn-milter|autoturn-policyd|autoturn-flusher|autoturnctl)$')
[ -z "$unexpected" ] && pass "rpmlint: only the accepted warnings" ||
  fail "rpmlint: only the accepted warnings" "$unexpected"
# The filters hide exactly the documented errors, no more.
run rpmlint "$RPM"
errors=$(printf '%s\n' "$OUT" | grep ': E: ' | sed 's/^[^:]*: E: //' | grep -v '^bad-manual-page-folder' | sort | tr '\n' '|')
want='no-signature|non-readable /etc/autoturn/customers 600|non-standard-dir-perm /var/lib/autoturn 2750|non-standard-dir-perm /var/spool/autoturn 700|'
[ "$errors" = "$want" ] && pass "rpmlint without the filters: exactly the four intended errors" ||
  fail "rpmlint without the filters: exactly the four intended errors" "got: $errors" "want: $want"

# --- contents ---
run rpm -qlp "$RPM"
missing=$(for f in /usr/sbin/autoturn-milter /usr/sbin/autoturn-policyd /usr/sbin/autoturn-flusher \
  /usr/sbin/autoturnctl /usr/share/man/man5/autoturn.conf.5.gz /usr/share/man/man8/autoturnctl.8.gz \
  /usr/lib/systemd/system/autoturn-flusher.service /etc/autoturn/autoturn.conf /etc/autoturn/customers \
  /var/spool/autoturn /var/lib/autoturn; do
  printf '%s\n' "$OUT" | grep -qxF "$f" || echo "$f"; done)
[ -z "$missing" ] && pass "rpm -qlp lists programs, man pages, units, conffiles, directories" ||
  fail "rpm -qlp lists the expected files" "missing: $missing" "$OUT"
run rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPM"
LIST=$OUT
has() {  # LABEL EXACT-LINE
  printf '%s\n' "$LIST" | grep -qxF -- "$2" && pass "$1" || fail "$1" "no line: $2" "$LIST"
}
for p in autoturn-milter autoturn-policyd autoturn-flusher autoturnctl; do
  has "program /usr/sbin/$p" "-rwxr-xr-x root root  /usr/sbin/$p"
done
for m in man5/autoturn.conf.5 man5/autoturn-customers.5 man7/autoturn.7 man8/autoturn-milter.8 \
         man8/autoturn-policyd.8 man8/autoturn-flusher.8 man8/autoturnctl.8; do
  has "man page $m (gzip)" "-rw-r--r-- root root d /usr/share/man/$m.gz"
done
for u in autoturn-milter autoturn-policyd autoturn-flusher; do
  has "unit $u.service" "-rw-r--r-- root root  /usr/lib/systemd/system/$u.service"
  cmp -s <(rpm2cpio "$RPM" | cpio -i --quiet --to-stdout "./usr/lib/systemd/system/$u.service") \
      "$SRCDIR/packaging/systemd/$u.service" &&
    pass "$u.service is packaging/systemd/$u.service" || fail "$u.service is packaging/systemd/$u.service"
done
has "autoturn.conf is %config(noreplace)" "-rw-r--r-- root root cn /etc/autoturn/autoturn.conf"
has "customers is %config(noreplace), root only" "-rw------- root root cn /etc/autoturn/customers"
has "spool directory" "drwx------ autoturn autoturn  /var/spool/autoturn"
has "state directory (set-group-id)" "drwxr-s--- autoturn autoturn  /var/lib/autoturn"
has "documentation" "-rw-r--r-- root root d /usr/share/doc/autoturn/README.md"
has "example: Postfix settings for the milter" "-rw-r--r-- root root d /usr/share/doc/autoturn/examples/postfix-main.cf.milter"
run rpm -qp --configfiles "$RPM"
[ "$OUT" = $'/etc/autoturn/autoturn.conf\n/etc/autoturn/customers' ] &&
  pass "exactly two configuration files" || fail "exactly two configuration files" "$OUT"
cmp -s <(rpm2cpio "$RPM" | cpio -i --quiet --to-stdout ./etc/autoturn/autoturn.conf) "$SRCDIR/conf/autoturn.conf" &&
  pass "autoturn.conf is conf/autoturn.conf" || fail "autoturn.conf is conf/autoturn.conf"
cmp -s <(rpm2cpio "$RPM" | cpio -i --quiet --to-stdout ./etc/autoturn/customers) "$SRCDIR/conf/customers.example" &&
  pass "customers is conf/customers.example" || fail "customers is conf/customers.example"

# --- scriptlets ---
run rpm -qp --scripts "$RPM"
SCRIPTS=$OUT
pre=$(printf '%s\n' "$SCRIPTS" | sed -n '/^preinstall scriptlet/,/^[a-z]* *scriptlet/p')
printf '%s\n' "$pre" | grep -qxF 'getent group autoturn >/dev/null || groupadd -r autoturn' &&
  pass "%pre creates the system group autoturn when missing" ||
  fail "%pre creates the system group autoturn when missing" "$pre"
printf '%s\n' "$pre" | grep -qF 'getent passwd autoturn >/dev/null || \' &&
printf '%s\n' "$pre" | grep -qE '^ +useradd -r -g autoturn -d /var/lib/autoturn -s /sbin/nologin \\$' &&
  pass "%pre creates the system user autoturn when missing (no login)" ||
  fail "%pre creates the system user autoturn when missing (no login)" "$pre"
printf '%s\n' "$pre" | grep -qF 'getent passwd autoturn-odmr >/dev/null || \' &&
printf '%s\n' "$pre" | grep -qE '^ +useradd -r -U -M -d /nonexistent -s /sbin/nologin \\$' &&
  pass "%pre creates the system user autoturn-odmr (ODMR before AUTH) when missing" ||
  fail "%pre creates the system user autoturn-odmr" "$pre"
bad=$(printf '%s\n' "$SCRIPTS" | grep -E '(>|\b(cp|mv|rm|install|ln|chmod|chown|sed -i)\b)[^|;&]*/etc/autoturn')
[ -z "$bad" ] && pass "no scriptlet writes to /etc/autoturn" || fail "no scriptlet writes to /etc/autoturn" "$bad"
printf '%s\n' "$SCRIPTS" | grep -qE '^if \[ ! -e /var/lib/autoturn/customers\.cdb \]; then$' &&
printf '%s\n' "$SCRIPTS" | grep -qE '^ +/usr/sbin/autoturnctl compile >/dev/null' &&
  pass "%post compiles a first table only when there is none" ||
  fail "%post compiles a first table only when there is none" "$SCRIPTS"
for u in autoturn-milter autoturn-policyd autoturn-flusher; do
  printf '%s\n' "$SCRIPTS" | grep -q "systemctl --no-reload preset .*$u.service" &&
  printf '%s\n' "$SCRIPTS" | grep -q "systemctl --no-reload disable --now .*$u.service" &&
  printf '%s\n' "$SCRIPTS" | grep -q "systemctl try-restart .*$u.service" &&
    pass "scriptlets preset, disable on erase and try-restart on upgrade $u.service" ||
    fail "scriptlets handle $u.service" "$SCRIPTS"
done
sh -n <<<"$(printf '%s\n' "$SCRIPTS" | grep -v 'scriptlet (using /bin/sh):$')" &&
  pass "the scriptlets are valid sh" || fail "the scriptlets are valid sh"

# --- requirements ---
run rpm -qp --requires "$RPM"
REQ=$OUT
for r in '/bin/sh' 'shadow-utils' 'libc.so.6()(64bit)' 'libconfuse.so.2()(64bit)' \
         'libcdb.so.1()(64bit)' 'libcrypto.so.3()(64bit)' 'libssl.so.3()(64bit)'; do
  printf '%s\n' "$REQ" | grep -qxF -- "$r" && pass "requires $r" || fail "requires $r" "$REQ"
done
printf '%s\n' "$REQ" | grep -qE '^libmilter\.so\.[0-9.]+\(\)\(64bit\)$' &&
  pass "requires libmilter" || fail "requires libmilter" "$REQ"
other=$(printf '%s\n' "$REQ" | grep -vE '^(/bin/sh|shadow-utils|config\(autoturn\) = 0\.1\.0-1|rtld\(GNU_HASH\)|rpmlib\(.*\) <= .*|lib[a-z0-9_]+\.so\.[0-9.]+(\(.*\))?\(64bit\))$')
[ -z "$other" ] && pass "no other requirements" || fail "no other requirements" "$other"
run rpm -qp --provides "$RPM"
expect_line "provides autoturn = 0.1.0-1" out "autoturn = 0.1.0-1"

# --- %config(noreplace) at work (rpm --root; no scriptlets) ---
top=$PKG_BUILD_DIR/rpm
sed -e 's/^Release: .*/Release:        2/' \
    -e 's|^mv %{buildroot}%{_sysconfdir}/autoturn/customers.example .*|&\necho "# changed in release 2" >>%{buildroot}%{_sysconfdir}/autoturn/autoturn.conf|' \
    "$SRCDIR/packaging/rpm/autoturn.spec" >"$top/SPECS/autoturn-r2.spec"
if rpmbuild -bb --nodeps --define "_topdir $top" \
     --define '__brp_compress /bin/bash %{_rpmconfigdir}/brp-compress %{?_prefix}' \
     "$top/SPECS/autoturn-r2.spec" >"$WORK/r2.log" 2>&1; then
  pass "release 2 builds (autoturn.conf changed)"
else
  fail "release 2 builds (autoturn.conf changed)" "$(tail -n 20 "$WORK/r2.log")"
fi
RPM2=$(ls "$top"/RPMS/*/autoturn-0.1.0-2.*.rpm 2>/dev/null | head -n 1)
ROOT=$WORK/rpmroot
mkdir -p "$ROOT"
rpm --root "$ROOT" --initdb
rpmi() { rpm --root "$ROOT" --nodeps --noscripts "$@"; }
run rpmi -i "$RPM"
expect "rpm -i into a scratch root" 0
printf '# local edit (t_rpm.sh)\n' >>"$ROOT/etc/autoturn/autoturn.conf"
EDITED=$(md5sum <"$ROOT/etc/autoturn/autoturn.conf")
run rpmi -U --replacepkgs "$RPM"
expect "rpm reinstalls the same package" 0
[ "$(md5sum <"$ROOT/etc/autoturn/autoturn.conf")" = "$EDITED" ] && [ ! -e "$ROOT/etc/autoturn/autoturn.conf.rpmnew" ] &&
  pass "reinstall keeps the edited autoturn.conf" || fail "reinstall keeps the edited autoturn.conf"
run rpmi -U "$RPM2"
expect "rpm upgrades to release 2" 0 "" "warning: /etc/autoturn/autoturn.conf created as /etc/autoturn/autoturn.conf.rpmnew"
[ "$(md5sum <"$ROOT/etc/autoturn/autoturn.conf")" = "$EDITED" ] &&
  pass "upgrade keeps the edited autoturn.conf" || fail "upgrade keeps the edited autoturn.conf"
[ "$(tail -n 1 "$ROOT/etc/autoturn/autoturn.conf.rpmnew" 2>/dev/null)" = "# changed in release 2" ] &&
  pass "the new autoturn.conf is beside it as .rpmnew" || fail "the new autoturn.conf is beside it as .rpmnew"
run rpm --root "$ROOT" -q autoturn
expect_line "release 2 is installed" out "autoturn-0.1.0-2.$(rpm --eval '%{_arch}')"

echo "# t_rpm.sh took $(($(date +%s) - T0)) s"
finish
