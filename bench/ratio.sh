# SPDX-License-Identifier: ISC
# shellcheck shell=sh
# ratio.sh - the summary line every bench script prints at its end (sourced;
# POSIX sh). The format is documented at the top of bench/all, which collects
# these lines from each bench's output and prints them as one table.
#
#   ratio BENCH WHAT OURS UNIT PEER PEER_VALUE TARGET
#
# prints
#
#   RATIO<TAB>BENCH<TAB>WHAT<TAB>OURS UNIT<TAB>PEER<TAB>PEER_VALUE UNIT<TAB>RATIO<TAB>TARGET<TAB>MET
#
# OURS and PEER_VALUE are plain numbers in the same UNIT; RATIO is
# OURS / PEER_VALUE (three decimals); TARGET is an operator and a number
# (">=0.9", "<1") or "-" for a figure without a target; MET is yes or no,
# from the unrounded ratio, or "-" when there is no target. A time or latency
# budget is a peer named "budget" whose value is the limit, with TARGET "<1".
# No field may contain a tab.

ratio() {
  awk -v b="$1" -v w="$2" -v o="$3" -v u="$4" -v p="$5" -v pv="$6" -v t="$7" '
    function num(x) {
      if (x < 0) return "-" num(-x)
      if (x == int(x)) return sprintf("%.0f", x)
      if (x >= 100) return sprintf("%.0f", x)
      if (x >= 1) return sprintf("%.2f", x)
      return sprintf("%.3g", x)
    }
    BEGIN {
      if (o !~ /^[0-9.eE+-]+$/ || pv !~ /^[0-9.eE+-]+$/ || pv + 0 == 0) {
        printf "ratio: %s: %s: not a measurement: ours \"%s\", peer \"%s\"\n", b, w, o, pv > "/dev/stderr"
        exit 1
      }
      r = o / pv
      met = "-"
      if (t != "-") {
        if (!match(t, /^(>=|<=|>|<)/)) {
          printf "ratio: %s: bad target \"%s\"\n", b, t > "/dev/stderr"
          exit 1
        }
        op = substr(t, 1, RLENGTH); lim = substr(t, RLENGTH + 1) + 0
        ok = (op == ">=") ? r >= lim : (op == ">") ? r > lim : (op == "<=") ? r <= lim : r < lim
        met = ok ? "yes" : "no"
      }
      printf "RATIO\t%s\t%s\t%s %s\t%s\t%s %s\t%.3f\t%s\t%s\n", b, w, num(o), u, p, num(pv), u, r, t, met
    }'
}
