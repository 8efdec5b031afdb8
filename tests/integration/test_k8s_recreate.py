#!/usr/bin/python3
"""Kubernetes provider: an HTTPRoute deleted and created again at once under the same name (a new
uid, no status) gets its status written again, although the computed status text is the same as
the one written for the old object (conformance HTTPRouteBackendRequestHeaderModifier follows
HTTPRouteRequestHeaderModifier this way); --gateway-address-pool reaches the Kubernetes provider
(the Gateway reports a pool address)."""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROUTE, FakeAPI, apply, backend, base, conditions, kget,  # noqa: E402
                     our_parents, start_k8s_gateway, wait_for)
from client import path_for  # noqa: E402


def accepted(api, name):
    r = kget(api, "httproute", name)
    ps = our_parents(r)
    return bool(ps) and conditions(ps[0]).get("Accepted") == "True"


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    a = start_echo(pod="web-a", ns="demo")
    host = unique_addr()
    port = free_port(host)
    net = f"127.{random.randrange(2, 250)}.{random.randrange(200, 250)}"
    gw = None
    try:
        apply(api, base(port) + "---\n" +
              backend("svc-a", a.addr, a.port) + "---\n" +
              ROUTE.format(name="app", prefix="/a", svc="svc-a"))
        gw = start_k8s_gateway(api, host, extra=["--gateway-address-pool", f"{net}.0/24"])
        check("k8s recreate: first route Accepted", wait_for(lambda: accepted(api, "app"), 15, 0.1),
              kget(api, "httproute", "app"))

        def gw_addr():
            g = kget(api, "gateway", "gw") or {}
            addrs = (g.get("status") or {}).get("addresses") or []
            return addrs[0].get("value") if addrs else None
        addr = wait_for(lambda: (lambda v: v if v and v.startswith(net + ".") else None)(
            gw_addr()), 10, 0.1)
        check("k8s: --gateway-address-pool gives the Gateway a pool address", addr is not None,
              gw_addr())

        route = kget(api, "httproute", "app")
        body = {"apiVersion": route["apiVersion"], "kind": "HTTPRoute",
                "metadata": {"name": "app", "namespace": "demo"}, "spec": route["spec"]}
        p = path_for("httproutes", "demo")
        for i in range(3):
            old_uid = (kget(api, "httproute", "app") or {}).get("metadata", {}).get("uid")
            api.delete(path_for("httproutes", "demo", "app"))
            r = api.create(p, json.loads(json.dumps(body)))
            new = kget(api, "httproute", "app") or {}
            check(f"k8s recreate {i}: a new object (new uid)",
                  r.status == 201 and new.get("metadata", {}).get("uid") != old_uid,
                  (r.status, new.get("metadata")))
            check(f"k8s recreate {i}: its status is written again",
                  wait_for(lambda: accepted(api, "app"), 10, 0.1), kget(api, "httproute", "app"))
            time.sleep(0.3 * i)  # vary the phase against the debounce
    finally:
        if gw is not None:
            stop(gw)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
