#!/usr/bin/env python3
"""HTTPRoute timeouts given as "0s" disable the timeout (Gateway API HTTPRouteTimeouts: a zero
duration SHOULD disable it): with --upstream-timeout 1s, a route with timeouts.request: 0s (or
backendRequest: 0s) waits for a backend that answers after 2 s, while a route without timeouts
still answers 504 after the gateway default; /config shows the disabled timeouts as 0."""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from manifests import backend, docs, gateway, gateway_class  # noqa: E402
from svtest import check  # noqa: E402

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: demo}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /zero-request}}]
    timeouts: {request: 0s}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /zero-backend}}]
    timeouts: {backendRequest: 0s}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: svc-a, port: 80}]
"""


def main():
    e = t.start_echo(pod="pod-a")
    host = t.unique_addr()
    port = t.free_port(host)
    d = tempfile.mkdtemp(prefix="sv-tzero-")
    with open(os.path.join(d, "all.yaml"), "w") as f:
        f.write(docs(gateway_class(), gateway(port), backend("svc-a", e.addr, e.port), ROUTE))
    gw = t.start_gateway(["--config-dir", d, "--bind", host, "--upstream-timeout", "1s"],
                         wait=(host, port))
    H = {"Host": "demo.test"}

    def get(path, timeout=10.0):
        return t.http_request(host, port, "GET", path, headers=H, timeout=timeout)

    deadline = time.time() + 10
    r = get("/plain")
    while r.status != 200 and time.time() < deadline:
        time.sleep(0.1)
        r = get("/plain")
    check("timeout 0s: routes are live", r.status == 200, r)

    r = get("/other?delay=2s")
    check("no route timeouts: --upstream-timeout 1s answers 504", r.status == 504, r)
    r = get("/zero-request?delay=2s")
    check("timeouts.request: 0s disables the timeout: the 2 s answer arrives", r.status == 200, r)
    r = get("/zero-backend?delay=2s")
    check("timeouts.backendRequest: 0s disables the timeout: the 2 s answer arrives",
          r.status == 200, r)

    cfg = json.loads(t.http_request(gw.admin[0], gw.admin[1], "GET", "/config").body)
    text = json.dumps(cfg)
    check("/config shows the disabled timeouts as 0",
          '"requestTimeoutMs": 0' in text and '"backendRequestTimeoutMs": 0' in text)

    rc = t.stop(gw)
    check("timeout 0s gateway: clean exit", rc == 0 and gw.returncode == 0, gw.returncode)
    shutil.rmtree(d, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
