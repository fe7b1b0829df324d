# SPDX-License-Identifier: ISC
# t_install.sh - "cmake --install" puts the programs, man pages and example
# configuration where a packaged install expects them (into a DESTDIR).
. "$(dirname "$0")/lib.sh"
: "${BUILDDIR:?set by ctest}"

# The configured prefix and the compiled-in config path must agree.
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILDDIR/CMakeCache.txt")
conf=$(sed -n 's/^#define AUTOTURN_CONFIG_FILE *"\(.*\)"$/\1/p' "$BUILDDIR/generated/paths.h")
etc=${conf%/autoturn.conf}
run env DESTDIR="$WORK/root" cmake --install "$BUILDDIR"
expect "cmake --install succeeds" 0
for f in "$prefix/sbin/autoturnctl" \
         "$prefix/share/man/man8/autoturnctl.8" \
         "$prefix/share/man/man5/autoturn.conf.5" \
         "$prefix/share/man/man5/autoturn-customers.5" \
         "$prefix/share/man/man7/autoturn.7" \
         "$etc/autoturn.conf" \
         "$etc/customers.example" \
         "$prefix/share/doc/autoturn/spool-format.md" \
         "$prefix/share/doc/autoturn/control-protocol.md" \
         "$prefix/share/doc/autoturn/MIGRATION.md" \
         "$prefix/share/doc/autoturn/examples/fetchmailrc.odmr" \
         "$prefix/share/doc/autoturn/examples/postfix-main.cf.milter" \
         "$prefix/share/doc/autoturn/examples/dovecot-post-login.sh" \
         "$prefix/share/doc/autoturn/METRICS.md" \
         "$prefix/share/doc/autoturn/examples/prometheus-rules.yml"; do
  [ -e "$WORK/root$f" ] && pass "installed $f" || fail "installed $f" "$(cd "$WORK/root" && find . | sort)"
done
[ -x "$WORK/root$prefix/sbin/autoturnctl" ] && pass "autoturnctl is executable" || fail "autoturnctl is executable"
run "$WORK/root$prefix/sbin/autoturnctl" check-config -c "$WORK/root$etc/autoturn.conf"
expect "installed example config is valid" 0 ": ok"
finish
