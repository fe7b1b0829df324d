#!/bin/sh
# SPDX-License-Identifier: ISC
# dovecot-post-login.sh - Dovecot post-login script: after a user logs in
# over IMAP or POP3, let the address they came from relay mail through
# Postfix for a while (autoturn-policyd grants, "roaming users"), then
# hand over to the mail process as Dovecot expects. Tested by
# tests/integration/t_policyd_postfix.sh.
#
# dovecot.conf:
#   service imap {
#     executable = imap autoturn-grant
#   }
#   service pop3 {
#     executable = pop3 autoturn-grant
#   }
#   service autoturn-grant {
#     executable = script-login /usr/share/doc/autoturn/examples/dovecot-post-login.sh
#     user = $default_internal_user   # must be allowed to use the policyd control socket
#     unix_listener autoturn-grant { }
#   }
#
# Dovecot sets USER and IP. A failed grant must never block the login:
# the error goes to Dovecot's log and the session goes on.
AUTOTURNCTL=${AUTOTURNCTL:-/usr/sbin/autoturnctl}
AUTOTURN_CONF=${AUTOTURN_CONF:-/etc/autoturn/autoturn.conf}

if [ -n "$IP" ] && [ -n "$USER" ]; then
  "$AUTOTURNCTL" -c "$AUTOTURN_CONF" grant "$IP" --user "$USER" >/dev/null ||
    echo "autoturn: grant for $USER from $IP failed" >&2
fi
exec "$@"
