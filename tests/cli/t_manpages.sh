# SPDX-License-Identifier: ISC
# t_manpages.sh - every man page renders with man -l, and groff finds no
# problem in it (-ww: all warnings).
. "$(dirname "$0")/lib.sh"

pages=$(ls "$SRCDIR"/docs/man/*.[578])
[ -n "$pages" ] || fail "man pages exist" "none in $SRCDIR/docs/man"
for page in $pages; do
  name=$(basename "$page")
  run groff -man -ww -z "$page"
  if [ "$RC" = 0 ] && [ -z "$ERR" ]; then pass "groff -ww: $name"; else fail "groff -ww: $name" "$ERR"; fi
  run env MANWIDTH=80 man -l "$page"
  expect "man -l renders $name" 0 "NAME"
done
finish
