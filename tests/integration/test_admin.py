#!/usr/bin/env python3
"""The admin listener inside serval-gateway (quick mode): /healthz, /readyz, /metrics in the
Prometheus text format, 404 and 405 answers. /readyz and /metrics are registered by main.c; while
they are not, their checks are reported as skipped (never as passed)."""
import re
import sys
import time

import svtest as t
from svtest import check, http_request

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*'
                    r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})?'
                    r' (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?[0-9]+)?$')
META = re.compile(r'^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* '
                  r'(counter|gauge|histogram|summary|untyped))$')


def parse_metrics(text):
    """{sample-line-without-value: value} and the list of malformed lines."""
    values, bad = {}, []
    for line in text.splitlines():
        if not line or (line.startswith("#") and not line.startswith(("# HELP", "# TYPE"))):
            continue
        if line.startswith("#"):
            if not META.match(line):
                bad.append(line)
            continue
        if not SAMPLE.match(line):
            bad.append(line)
            continue
        key, _, val = line.rpartition(" ")
        values[key] = float(val)
    return values, bad


def main():
    gw_bin = t.binary("serval-gateway")
    echo = t.start_echo(pod="admin-backend-a-b", ns="admin")
    addr = t.unique_addr()
    port = t.free_port(addr)
    try:
        gw = t.start_gateway(["--workers", "1", "--listen", f"{addr}:{port}",
                              "--route", f"/={echo.addr}:{echo.port}"], wait=(addr, port))
    except RuntimeError as ex:
        if "not built yet" in str(ex):
            print(f"skip - admin: {gw_bin} is still the skeleton stub")
            t.stop(echo)
            sys.exit(0)
        check("admin: gateway starts with --admin", False, str(ex)[-1500:])
        t.finish()
        return
    ah, ap = gw.admin
    r = http_request(ah, ap, "GET", "/healthz")
    check("admin: /healthz 200", r.status == 200, r)
    r = http_request(ah, ap, "GET", "/no-such-endpoint")
    check("admin: unknown path 404", r.status == 404, r)
    r = http_request(ah, ap, "POST", "/healthz", body=b"")
    check("admin: POST refused with 405", r.status == 405, r)

    deadline = time.time() + 10
    r = http_request(ah, ap, "GET", "/readyz")
    while r.status == 503 and time.time() < deadline:
        time.sleep(0.1)
        r = http_request(ah, ap, "GET", "/readyz")
    if r.status == 404:
        print("skip - admin: /readyz not registered by main.c yet")
    else:
        check("admin: /readyz 200 once the quick-mode routes are live", r.status == 200, r)

    m1 = http_request(ah, ap, "GET", "/metrics")
    if m1.status == 404:
        print("skip - admin: /metrics not registered by main.c yet")
    else:
        check("admin: /metrics 200 text/plain", m1.status == 200 and
              (m1.header("content-type") or "").startswith("text/plain"), m1)
        v1, bad = parse_metrics(m1.body.decode("utf-8", "replace"))
        check("admin: /metrics is Prometheus text format", not bad and v1, bad[:5])
        for i in range(20):
            http_request(addr, port, "GET", f"/through-proxy/{i}")
        time.sleep(0.5)  # counters are per-worker snapshots; give them a moment
        v2, bad = parse_metrics(http_request(ah, ap, "GET", "/metrics").body.decode())
        grew = [k for k in v2 if k in v1 and v2[k] - v1[k] >= 20]
        check("admin: some counter grew by the 20 proxied requests", grew, sorted(v2)[:20])
    t.finish()


if __name__ == "__main__":
    main()
