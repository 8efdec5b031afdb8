#!/usr/bin/env python3
"""--gateway-address-pool: two Gateways on the same port get their own loopback addresses from the
pool (reported in /status), each address serves only its Gateway's route; a Gateway asking for a
pool address in spec.addresses gets it; a malformed pool is refused at start (exit 2)."""
import json
import os
import random
import subprocess
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
metadata: {{name: {name}, namespace: demo}}
spec:
  parentRefs: [{{name: {gw}}}]
  rules: [{{backendRefs: [{{name: {name}, port: 80}}]}}]
"""


def manifests(port, fixed, ea, eb):
    """Gateways "one" (an address from the pool) and "two" (asks for <fixed>) on <port>, each with
    its Service (svc-one -> <ea>, svc-two -> <eb>) and route."""
    return docs(gateway_class(), gateway(port, name="one"),
                gateway(port, name="two", addresses=[fixed]),
                backend("svc-one", ea.addr, ea.port), ROUTE.format(name="svc-one", gw="one"),
                backend("svc-two", eb.addr, eb.port), ROUTE.format(name="svc-two", gw="two"))


def status_addresses(gw):
    try:
        r = t.http_request(gw.admin[0], gw.admin[1], "GET", "/status", timeout=3.0)
        doc = json.loads(r.body)
    except (OSError, ValueError, EOFError):
        return {}
    out = {}
    for g in (doc.get("status") or {}).get("gateways", []):
        addrs = (g.get("status") or {}).get("addresses") or []
        out[g.get("name")] = addrs[0]["value"] if addrs else None
    return out


def main():
    bad = subprocess.run([t.binary("serval-gateway"), "--config-dir", "/nonexistent",
                          "--gateway-address-pool", "127.0.0.0"], capture_output=True, text=True,
                         timeout=10)
    check("malformed pool refused at start", bad.returncode == 2 and
          "--gateway-address-pool" in bad.stderr, (bad.returncode, bad.stderr[-200:]))

    ea = t.start_echo(pod="pod-one")
    eb = t.start_echo(pod="pod-two")
    net = f"127.{random.randrange(2, 250)}.{random.randrange(200, 250)}"
    pool = f"{net}.0/24"
    fixed = f"{net}.77"
    port = 18000 + random.randrange(0, 2000)
    d = tempfile.mkdtemp(prefix="sv-pool-")
    with open(os.path.join(d, "all.yaml"), "w") as f:
        f.write(manifests(port, fixed, ea, eb))
    gw = t.start_gateway(["--config-dir", d, "--bind", t.unique_addr(), "--workers", "1",
                          "--gateway-address-pool", pool])
    deadline = time.time() + 10
    addrs = status_addresses(gw)
    while (not addrs.get("one") or not addrs.get("two")) and time.time() < deadline:
        time.sleep(0.1)
        addrs = status_addresses(gw)
    one, two = addrs.get("one"), addrs.get("two")
    check("each Gateway reports its own pool address",
          one and two and one != two and one.startswith(net + ".") and two == fixed, addrs)
    if not (one and two):
        t.finish()

    def pod(addr):
        try:
            r = t.http_request(addr, port, "GET", "/", headers={"Host": "x.test"}, timeout=3.0)
            return r.json().get("pod") if r.status == 200 else r.status
        except (OSError, ValueError, EOFError) as e:
            return repr(e)
    got = {}
    while time.time() < deadline:
        got = {"one": pod(one), "two": pod(two)}
        if got == {"one": "pod-one", "two": "pod-two"}:
            break
        time.sleep(0.1)
    check("each address serves only its Gateway's route", got == {"one": "pod-one",
                                                                  "two": "pod-two"}, got)
    t.stop(gw)
    t.finish()


if __name__ == "__main__":
    main()
