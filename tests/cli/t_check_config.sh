# SPDX-License-Identifier: ISC
# t_check_config.sh - autoturnctl check-config: the example config is
# valid, and each kind of mistake gives FILE:LINE: message and exit 78.
. "$(dirname "$0")/lib.sh"
D=$SRCDIR/tests/data/config

run "$AUTOTURNCTL" check-config -c "$SRCDIR/conf/autoturn.conf"
expect "shipped example config is valid" 0 "$SRCDIR/conf/autoturn.conf: ok"

run "$AUTOTURNCTL" -c "$D/full.conf" check-config
expect "every key set explicitly (-c before the command)" 0 "$D/full.conf: ok"

run "$AUTOTURNCTL" check-config -c "$D/empty.conf"
expect "empty config is valid" 0 "$D/empty.conf: ok"

run "$AUTOTURNCTL" check-config -c "$WORK/missing.conf"
expect "missing file" 78 "" "$WORK/missing.conf: cannot open: No such file or directory"

run "$AUTOTURNCTL" check-config -c "$D/bad_unknown.conf"
expect_line "unknown key" err "$D/bad_unknown.conf:6: no such option 'bogus'"
expect "unknown key exits 78" 78

run "$AUTOTURNCTL" check-config -c "$D/bad_syntax.conf"
expect_line "syntax error with its line" err "$D/bad_syntax.conf:4: unexpected token '='"

run "$AUTOTURNCTL" check-config -c "$D/bad_type.conf"
expect_line "string where a number is expected" err "$D/bad_type.conf:3: bad number 'many' for 'max_recipients': not a number"

run "$AUTOTURNCTL" check-config -c "$D/bad_duration.conf"
expect_line "bad duration" err "$D/bad_duration.conf:7: bad duration '5x' for 'grant_ttl': unknown unit (use s, m, h, d or w)"
expect_line "second bad duration in the same run" err "$D/bad_duration.conf:8: bad duration '-1s' for 'notify_interval': sign not allowed"

run "$AUTOTURNCTL" check-config -c "$D/bad_size.conf"
expect "bad size" 78 "" "$D/bad_size.conf:3: bad size '10X' for 'max_line': "

run "$AUTOTURNCTL" check-config -c "$D/bad_socket.conf"
expect_line "bad socket spec" err "$D/bad_socket.conf:3: bad socket 'inet:localhost' for 'listen': missing port"
expect_line "unknown socket type" err "$D/bad_socket.conf:6: bad socket 'tcp:127.0.0.1:10031' for 'control': unknown socket type (use unix: or inet:)"
expect_line "bad IPv6 socket" err "$D/bad_socket.conf:10: bad socket 'inet:[::1:366' for 'listen': unterminated [IPv6] address"

run "$AUTOTURNCTL" check-config -c "$D/bad_cross.conf"
expect_line "cross-field check" err "$D/bad_cross.conf: flusher: bounce_method smtp needs bounce_relay"

run "$AUTOTURNCTL" check-config -c "$D/bad_unclosed.conf"
expect_line "file ends inside a section" err "$D/bad_unclosed.conf:1: section not closed: missing '}'"
expect "unclosed section exits 78" 78

finish
