# SPDX-License-Identifier: ISC
# odmr.sh - ODMR (RFC 2645) helpers for the integration tests (sourced
# after postfix.sh and flusher.sh).
#
#   od_user                       the user ODMR sessions run as before AUTH
#                                 (autoturn-odmr, the default odmr.user),
#                                 created as a system user if missing
#   od_setup DIR PORT [LINE...]   customers acme (virt.dom, other.dom; atrn;
#                                 password "secret1"), beta (beta.example;
#                                 atrn; "secret2"), gamma (gamma.example;
#                                 no atrn; "secret3"); a self-signed
#                                 certificate DIR/tls.{crt,key}; the
#                                 flusher config with odmr enabled on
#                                 127.0.0.1:PORT (LINEs go into odmr { })
#   od_fetch DIR NAME PASSWORD DOMAINS SMTPPORT   fetchmail --protocol ODMR as
#                                 the customer, relaying to 127.0.0.1:SMTPPORT;
#                                 sets FM_RC and FM_OUT; returns fetchmail's
#                                 status once the session has let go of the
#                                 customer's spool lock (fetchmail may exit
#                                 before the session does; not after a 451
#                                 "delivery running": someone else holds it)
#   od_client ARGS...             tests/integration/lib/odmr_client.py
#   od_msg FILE TAG [LINE...]     a message with a unique Message-ID
: "${AUTOTURNCTL:?set by ctest}"

od_user() {
  id autoturn-odmr >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      autoturn-odmr 2>/dev/null || id autoturn-odmr >/dev/null 2>&1
}

od_setup() {
  local dir=$1 port=$2 s1 s2 s3; shift 2
  od_user || return 1
  s1=$(printf secret1 | "$AUTOTURNCTL" secret) || return 1
  s2=$(printf secret2 | "$AUTOTURNCTL" secret) || return 1
  s3=$(printf secret3 | "$AUTOTURNCTL" secret) || return 1
  fl_customers "$dir" <<SRC || return 1
customer acme
    domain virt.dom
    domain other.dom
    delivery host 127.0.0.9:25
    tls none
    trigger atrn
    secret $s1
customer beta
    domain beta.example
    delivery host 127.0.0.9:25
    tls none
    trigger atrn
    secret $s2
customer gamma
    domain gamma.example
    delivery host 127.0.0.9:25
    tls none
    trigger etrn
    secret $s3
SRC
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=odmr.autoturn.test" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" >/dev/null 2>&1 || return 1
  local lines=("odmr {" "enable = true" "listen = { \"inet:127.0.0.1:$port\" }"
               "tls_cert = \"$dir/tls.crt\"" "tls_key = \"$dir/tls.key\"" "$@" "}")
  fl_config "$dir" "${lines[@]}"
}

od_fetch() {
  local dir=$1 user=$2 pass=$3 domains=$4 smtpport=$5 home
  home="$dir/fetchmail-$user"
  mkdir -p "$home" && chmod 0700 "$home"
  FM_RC="$home/rc"
  printf 'poll 127.0.0.1 protocol ODMR service %s user "%s" password "%s" fetchdomains %s smtphost 127.0.0.1/%s\n' \
    "$OD_PORT" "$user" "$pass" "$domains" "$smtpport" >"$FM_RC"
  chmod 0600 "$FM_RC"
  # --pidfile: as root fetchmail would lock /var/run/fetchmail.pid, shared by every run
  FM_OUT=$(FETCHMAILHOME=$home timeout 120 fetchmail -v --pidfile "$home/fetchmail.pid" -f "$FM_RC" 2>&1)
  local rc=$?
  case $FM_OUT in
    *"ODMR< 451 4.4.0"*) ;;
    *) wait_for 30 eval "! fl_locked '$dir' '$user'" ;;
  esac
  return $rc
}

od_client() {
  python3 "$SRCDIR/tests/integration/lib/odmr_client.py" "$@"
}

od_msg() {
  local f=$1 tag=$2; shift 2
  { printf 'From: <s@example.org>\r\nTo: <a@virt.dom>\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n' "$tag" "$tag"
    local l; for l in "$@"; do printf '%s\r\n' "$l"; done; } >"$f"
}
