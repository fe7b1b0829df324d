# SPDX-License-Identifier: ISC
# t_prometheus_rules.sh - conf/prometheus-rules.yml, the shipped example
# alerting rules: promtool (Debian's prometheus package) accepts them, and
# promtool's rule unit tests (tests/data/prometheus/rules.test.yml) show
# each alert firing on its own series, after its "for:", with its
# annotations, and never on the healthy series. A copy of the rules with
# a broken expression and one with a changed threshold must be refused,
# so that these checks can fail.
. "$(dirname "$0")/lib.sh"
RULES=$SRCDIR/conf/prometheus-rules.yml
command -v promtool >/dev/null || { fail "promtool installed (scripts/deps: prometheus)"; finish; exit 1; }

run promtool check rules "$RULES"
expect "promtool check rules" 0 "SUCCESS: 6 rules found"

# promtool reads rule_files relative to the test file: copy both, same layout
mkdir -p "$WORK/conf" "$WORK/tests/data/prometheus"
cp "$SRCDIR/tests/data/prometheus/rules.test.yml" "$WORK/tests/data/prometheus/"
cp "$RULES" "$WORK/conf/prometheus-rules.yml"
run promtool test rules "$WORK/tests/data/prometheus/rules.test.yml"
expect "promtool test rules: every alert fires when it should, and only then" 0 "SUCCESS"

for alert in AutoturnDaemonDown AutoturnMailHeldTooLong AutoturnFlushesFailing \
             AutoturnCustomerTableLoadFailed AutoturnMilterTempfailing AutoturnSpoolScanStalled; do
  grep -q "alertname: $alert$" "$SRCDIR/tests/data/prometheus/rules.test.yml" &&
    pass "rule test covers $alert" || fail "rule test covers $alert"
done

sed 's/expr: up{job=~"autoturn-.\*"} == 0/expr: up{job=~"autoturn-.*"} ==/' "$RULES" >"$WORK/conf/prometheus-rules.yml"
run promtool check rules "$WORK/conf/prometheus-rules.yml"
expect "a broken expression is refused" 1 "" "could not parse expression"

sed 's/> 48 \* 3600/> 72 * 3600/' "$RULES" >"$WORK/conf/prometheus-rules.yml"
run promtool test rules "$WORK/tests/data/prometheus/rules.test.yml"
expect "a changed threshold fails the rule tests" 1 "" ""
[[ "$OUT$ERR" == *"alertname: AutoturnMailHeldTooLong"* ]] &&
  pass "... in the held-too-long test" || fail "held-too-long test fails" "$OUT" "$ERR"

finish
