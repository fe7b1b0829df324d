# SPDX-License-Identifier: ISC
# lib.sh - helpers for the command-line tests (sourced by t_*.sh).
# Each check prints "ok - LABEL" or "not ok - LABEL" with what differed;
# finish() prints "N passed, N failed" and sets the exit status.
set -u
: "${AUTOTURNCTL:?set by ctest}" "${SRCDIR:?set by ctest}"
PASSED=0
FAILED=0
WORK=$(mktemp -d /tmp/autoturn-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

pass() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "not ok - $1"; shift; printf '    %s\n' "$@"; }

# run CMD... : capture stdout, stderr and status into OUT, ERR, RC
run() {
  "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  OUT=$(cat "$WORK/out")
  ERR=$(cat "$WORK/err")
}

# expect LABEL RC [stdout-substring] [stderr-substring]
expect() {
  local label=$1 rc=$2 out=${3:-} err=${4:-}
  if [ "$RC" != "$rc" ]; then
    fail "$label" "exit status $RC, want $rc" "stdout: $OUT" "stderr: $ERR"
  elif [ -n "$out" ] && [[ "$OUT" != *"$out"* ]]; then
    fail "$label" "stdout lacks: $out" "stdout: $OUT"
  elif [ -n "$err" ] && [[ "$ERR" != *"$err"* ]]; then
    fail "$label" "stderr lacks: $err" "stderr: $ERR"
  else
    pass "$label"
  fi
}

# expect_line LABEL STREAM(out|err) EXACT-LINE : one line must equal EXACT-LINE
expect_line() {
  local label=$1 stream=$2 line=$3 text
  if [ "$stream" = out ]; then text=$OUT; else text=$ERR; fi
  if printf '%s\n' "$text" | grep -qxF -- "$line"; then
    pass "$label"
  else
    fail "$label" "no line equal to: $line" "$stream: $text"
  fi
}

# wait_for SECONDS CMD... : poll CMD every 0.1 s until it succeeds (0) or
# SECONDS have passed by the clock (1; CMD itself may be slow on a loaded
# machine, so the deadline is not a count of tries). Every check of
# something asynchronous (a log line, a file, a process) goes through this,
# never a single look.
wait_for() {
  local end=$((SECONDS + $1)); shift
  while [ "$SECONDS" -lt "$end" ]; do "$@" && return 0; sleep 0.1; done
  "$@"
}

# wait_log FILE ERE [SECONDS] : wait_for a line of FILE matching ERE (default 20 s)
wait_log() { wait_for "${3:-20}" grep -Eq -- "$2" "$1"; }

# wait_gone PID [SECONDS] : wait_for process PID to end (default 20 s)
wait_gone() { wait_for "${2:-20}" eval "! kill -0 $1 2>/dev/null"; }

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
