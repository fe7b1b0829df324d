# SPDX-License-Identifier: ISC
# t_milter_big.sh - a 50 MB message for a held recipient streams to disk:
# stored byte-exact, and the milter's peak resident memory (VmHWM) stays
# flat (the figures are printed for the report).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib/postfix.sh"
. "$(dirname "$0")/lib/milter.sh"

D=$(mt_dir)
trap 'mt_down "$D"; rm -rf "$D" "$WORK"' EXIT
MAX_GROWTH_KB=8192
# Under AddressSanitizer freed memory sits in a quarantine (256 MB by
# default), which would look like growth: keep it small.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"

mt_customers "$D" <<'SRC' || { fail "compile customers"; finish; exit 1; }
customer acme
    domain virt.dom
SRC
# mt_up, with Postfix's size limit raised before it starts (a reload
# takes effect only as its processes are replaced)
mt_config "$D"
mt_start "$D" || { fail "milter starts" "$(cat "$D/milter.log")"; finish; exit 1; }
PORT=$(free_port); SINKPORT=$(free_port)
sink_start MT "127.0.0.1:$SINKPORT" "$D/sink" || { fail "smtp-sink starts"; finish; exit 1; }
mt_postfix "$D" "$PORT" "$SINKPORT" "virt.dom"
pf_set "$D/pf" "message_size_limit = 100000000"
pf_start "$D/pf" >"$D/pf-start.log" 2>&1 && wait_port 127.0.0.1 "$PORT" ||
  { fail "postfix starts" "$(cat "$D/pf-start.log")"; finish; exit 1; }

hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$MT_PID/status"; }

printf 'From: <s@example.org>\r\nSubject: warm-up\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <w@example.org>\r\n\r\nhi\r\n' >"$WORK/small"
run mt_smtp "$PORT" s@example.org "$WORK/small" a@virt.dom
expect "warm-up message held" 0 "DATA 250"
before=$(hwm)

python3 - "$WORK/big" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"From: <s@example.org>\r\nSubject: fifty megabytes\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"Message-ID: <big@example.org>\r\n\r\n")
    line = bytes(range(0x21, 0x7f)) + b"\xe9\xff\r\n"
    n = 0
    while n < 50 * 1024 * 1024:
        f.write(line); n += len(line)
PY
start=$(date +%s.%N)
run mt_smtp "$PORT" s@example.org "$WORK/big" a@virt.dom b@virt.dom
end=$(date +%s.%N)
expect "50 MB: client gets 250" 0 "DATA 250"
after=$(hwm)
f=$(grep -l '^Message-ID: <big@example.org>' $(mt_spool_files "$D" acme))
if [ -n "$f" ] && cmp -s "$WORK/big" <(mt_body "$f"); then
  pass "50 MB: stored byte-exact"
else
  fail "50 MB: stored byte-exact" "file: $f" "$(cmp "$WORK/big" <(mt_body "$f") 2>&1; ls -l "$WORK/big" $f)"
fi
echo "# milter VmHWM before: ${before} kB, after 50 MB: ${after} kB, growth $((after - before)) kB;" \
  "transaction $(echo "$end - $start" | bc) s"
[ $((after - before)) -lt $MAX_GROWTH_KB ] && pass "50 MB: milter peak RSS grew less than $MAX_GROWTH_KB kB" ||
  fail "50 MB: RSS flat" "before $before kB, after $after kB"
mt_check_log "$D"
finish
