#!/usr/bin/env python3
"""wrk keeps requesting a route that does not change while 1,000 changes to another route are
written to the --config-dir folder: zero non-2xx responses and zero socket errors on the stable
route, several generations published, and the last change served."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import (check, finish, free_port, http_request, start_echo, start_gateway,  # noqa: E402
                    unique_addr)
from manifests import (docs, endpoint_slice, gateway, gateway_class, service,  # noqa: E402
                       write_atomic)

STABLE_ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: stable, namespace: churn}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /stable}}]
    backendRefs: [{name: echo, port: 80}]
"""


def base(port, echo_port, echo_addr):
    """GatewayClass, Gateway, the echo Service and EndpointSlice, and the stable route."""
    return docs(gateway_class(), gateway(port, ns="churn"),
                service("echo", ns="churn", target_port=None),
                endpoint_slice("echo", echo_addr, echo_port, ns="churn", ready=None), STABLE_ROUTE)


CHURN = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: churn, namespace: churn, generation: {i}}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /churn-{i}}}}}]
    backendRefs: [{{name: echo, port: 80}}]
"""


def generation(gw):
    try:
        r = http_request(gw.admin[0], gw.admin[1], "GET", "/config", timeout=3.0)
        return json.loads(r.body).get("generation", 0)
    except (OSError, EOFError, ValueError):
        return 0


def main():
    if not shutil.which("wrk"):
        print("skip - folder churn: wrk not installed")
        finish()
    echo = start_echo(pod="stable-pod", ns="churn")
    host = unique_addr()
    port = free_port(host)
    d = tempfile.mkdtemp(prefix="sv-churn-")
    try:
        write_atomic(d, "base.yaml", base(port, echo.port, echo.addr))
        write_atomic(d, "churn.yaml", CHURN.format(i=0))
        gw = start_gateway(["--config-dir", d, "--bind", host, "--workers", "2"],
                           wait=(host, port))
        r = http_request(host, port, "GET", "/stable", timeout=3.0)
        check("churn: stable route served before the churn", r.status == 200, r)
        gen0 = generation(gw)

        out = {}

        def run_wrk():
            p = subprocess.run(["wrk", "-t2", "-c8", "-d4s", f"http://{host}:{port}/stable"],
                               capture_output=True, text=True, timeout=30)
            out["text"] = p.stdout + p.stderr
            out["rc"] = p.returncode

        t = threading.Thread(target=run_wrk)
        t.start()
        time.sleep(0.3)
        for i in range(1, 1001):
            write_atomic(d, "churn.yaml", CHURN.format(i=i))
            time.sleep(0.0025)  # ~2.5 s of changes: several generations while wrk runs
        t.join(40)
        text = out.get("text", "")
        m = re.search(r"(\d+) requests in", text)
        n = int(m.group(1)) if m else 0
        check("churn: wrk ran", out.get("rc") == 0 and n > 100, text[-500:])
        check("churn: zero non-2xx responses on the stable route",
              "Non-2xx or 3xx responses" not in text, text[-500:])
        check("churn: zero socket errors", "Socket errors" not in text, text[-500:])
        gens = 0
        deadline = time.time() + 5
        while time.time() < deadline:
            gens = generation(gw) - gen0
            r = http_request(host, port, "GET", "/churn-1000", timeout=3.0)
            if r.status == 200:
                break
            time.sleep(0.05)
        check("churn: the last change is served", r.status == 200, r)
        old = http_request(host, port, "GET", "/churn-500", timeout=3.0)
        check("churn: an intermediate path is gone", old.status == 404, old)
        check("churn: writes were coalesced into several generations (not 1000)",
              2 <= gens < 500, f"{gens} generations")
        print(f"# {n} requests during 1000 route writes, {gens} generations published", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
