# SPDX-License-Identifier: ISC
# t_usage.sh - autoturnctl's command line: help, version, usage errors.
. "$(dirname "$0")/lib.sh"

run "$AUTOTURNCTL" --help
expect "--help exits 0 and lists commands" 0 "usage: autoturnctl [-c FILE] COMMAND [ARGS]"
for c in check-config compile customers lookup secret queue; do
  [[ "$OUT" == *"  $c "* ]] && pass "--help lists $c" || fail "--help lists $c" "$OUT"
done

run "$AUTOTURNCTL" --version
expect "--version" 0 "autoturnctl "

run "$AUTOTURNCTL"
expect "no command" 64 "" "autoturnctl: missing command"

run "$AUTOTURNCTL" frobnicate
expect "unknown command" 64 "" "autoturnctl: unknown command 'frobnicate'"

run "$AUTOTURNCTL" -x
expect "bad global option" 64 "" "Try 'autoturnctl --help'."

run "$AUTOTURNCTL" lookup domain
expect "lookup with one argument" 64 "" "autoturnctl: lookup: expected domain|address VALUE"

run "$AUTOTURNCTL" lookup host x.example
expect "lookup of an unknown kind" 64 "" "autoturnctl: lookup: 'host': expected domain or address"

run "$AUTOTURNCTL" queue a b
expect "queue with two arguments" 64 "" "autoturnctl: queue: expected [CUSTOMER]"

run "$AUTOTURNCTL" compile -z
expect "bad sub-command option" 64 "" "autoturnctl: compile: bad option '-z'"

run "$AUTOTURNCTL" compile -h
expect "sub-command -h" 0 "usage: autoturnctl [-c FILE] compile [SRC [DST]]"

finish
