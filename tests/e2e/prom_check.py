# SPDX-License-Identifier: ISC
"""prom_check.py - HTTP checks of the metrics endpoints and PromQL queries
against a private Prometheus, for tests/e2e/t_metrics.sh. One process does
a whole batch, so that polling does not start an interpreter per attempt.

  prom_check.py ready PROMPORT SECS    exit 0 once /-/ready says 200
  prom_check.py http PORT BODYFILE     GET, HEAD, POST of /metrics and GET of
                                       /nope: one "METHOD PATH STATUS TYPE ALLOW
                                       BODYLINES" line each; the GET body
                                       goes to BODYFILE
  prom_check.py expect PROMPORT        stdin: "WANT<TAB>EXPR[<TAB>LABEL]" lines;
                                       each instant query is polled (every
                                       0.2 s, for at most 60 s) until its value
                                       is WANT (one series: its value; a
                                       scalar: itself; several: values joined
                                       by ","; none: "none"); prints
                                       "ok - LABEL" or "not ok - LABEL<TAB>got: V"
  prom_check.py rules PROMPORT         "N ok" (N rules in group autoturn, all
                                       healthy) or "N bad: names"
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DEADLINE = 60.0


def fetch(url, method="GET", data=None):
    req = urllib.request.Request(url, method=method, data=data)
    try:
        r = urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as e:
        r = e
    return r.status, r.headers, r.read().decode()


def ready(port, secs):
    end = time.monotonic() + float(secs)
    while time.monotonic() < end:
        try:
            if fetch("http://127.0.0.1:%s/-/ready" % port)[0] == 200:
                return 0
        except OSError:
            pass
        time.sleep(0.2)
    return 1


def http(port, bodyfile):
    base = "http://127.0.0.1:%s" % port
    for method, path, data in (("GET", "/metrics", None), ("HEAD", "/metrics", None),
                               ("POST", "/metrics", b"x=1"), ("GET", "/nope", None)):
        status, headers, body = fetch(base + path, method, data)
        print(method, path, status, headers.get("Content-Type"), headers.get("Allow"),
              len(body.splitlines()))
        if method == "GET" and path == "/metrics":
            with open(bodyfile, "w") as f:
                f.write(body)
    return 0


def query(port, expr):
    url = "http://127.0.0.1:%s/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": expr}))
    try:
        d = json.loads(fetch(url)[2])
    except (OSError, ValueError) as e:
        return "error: %s" % e
    if d.get("status") != "success":
        return "error: %s" % d.get("error")
    res = d["data"]["result"]
    if d["data"]["resultType"] == "scalar":
        return res[1]
    if not res:
        return "none"
    return ",".join(s["value"][1] for s in sorted(res, key=lambda s: sorted(s["metric"].items())))


def expect(port):
    rc = 0
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        parts = line.split("\t")
        want, expr = parts[0], parts[1]
        label = parts[2] if len(parts) > 2 else "%s = %s" % (expr, want)
        end = time.monotonic() + DEADLINE
        got = query(port, expr)
        while got != want and time.monotonic() < end:
            time.sleep(0.2)
            got = query(port, expr)
        if got == want:
            print("ok - %s" % label, flush=True)
        else:
            print("not ok - %s\tgot: %s" % (label, got), flush=True)
            rc = 1
    return rc


def rules(port):
    d = json.loads(fetch("http://127.0.0.1:%s/api/v1/rules" % port)[2])
    found = [r for g in d["data"]["groups"] if g["name"] == "autoturn" for r in g["rules"]]
    bad = [r["name"] for r in found if r.get("health") != "ok"]
    print(len(found), "ok" if not bad else "bad: " + ",".join(bad))
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    sys.exit({"ready": ready, "http": http, "expect": expect, "rules": rules}[cmd](*args))
