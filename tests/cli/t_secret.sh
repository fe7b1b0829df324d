# SPDX-License-Identifier: ISC
# t_secret.sh - autoturnctl secret: stored form, determinism, bad input.
. "$(dirname "$0")/lib.sh"

run sh -c "printf 'tanstaafl\n' | '$AUTOTURNCTL' secret"
expect "secret from stdin" 0 "{CRAM-MD5}"
first=$OUT
if [[ "$first" =~ ^\{CRAM-MD5\}[0-9a-f]{64}$ ]]; then pass "stored form is {CRAM-MD5} + 64 hex"; else fail "stored form" "$first"; fi

want=$(python3 "$SRCDIR/tests/cli/cram_context.py" tanstaafl)
[ "$first" = "$want" ] && pass "matches the Dovecot CRAM-MD5 context form" || fail "Dovecot form" "got  $first" "want $want"

run sh -c "printf 'tanstaafl' | '$AUTOTURNCTL' secret"
expect "no final newline gives the same secret" 0 "$first"

run sh -c "printf 'other\n' | '$AUTOTURNCTL' secret"
[ "$OUT" != "$first" ] && pass "another password, another secret" || fail "another password" "$OUT"

run sh -c "printf '\n' | '$AUTOTURNCTL' secret"
expect "empty password" 65 "" "autoturnctl: secret: empty password"

run sh -c "'$AUTOTURNCTL' secret </dev/null"
expect "no input" 65 "" "autoturnctl: secret: expected one line (at most 1024 bytes) on standard input"

run sh -c "head -c 2000 /dev/zero | tr '\\0' a | '$AUTOTURNCTL' secret"
expect "over-long password" 65 "" "autoturnctl: secret: expected one line (at most 1024 bytes) on standard input"

run "$AUTOTURNCTL" secret extra
expect "secret takes no argument" 64 "" "autoturnctl: secret: expected no arguments"
finish
