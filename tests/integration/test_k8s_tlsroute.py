#!/usr/bin/python3
"""TLSRoutes through the Kubernetes provider: the v1alpha2 TLSRoute reflector feeds the
translator, and a TLSRoute's status is written to the TLSRoute object (.../v1alpha2/.../tlsroutes/
NAME/status), never to an HTTPRoute of the same name, whose status keeps its own parent only."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (FakeAPI, apply, backend, conditions, config, kget,  # noqa: E402
                     our_parents, ready, start_k8s_gateway, wait_for)
import manifests  # noqa: E402

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: demo}}
spec:
  gatewayClassName: serval
  listeners:
  - {{name: http, port: {port}, protocol: HTTP}}
  - name: pass
    port: {port2}
    protocol: TLS
    tls: {{mode: Passthrough}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
"""

ROUTES = """\
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: same, namespace: demo}
spec:
  parentRefs: [{name: gw, sectionName: pass}]
  hostnames: [a.pass.test]
  rules:
  - backendRefs: [{name: svc-a, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: same, namespace: demo}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules:
  - backendRefs: [{name: svc-a, port: 80}]
"""


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    a = start_echo(pod="web-a", ns="demo")
    host = unique_addr()
    port, port2 = free_port(host), free_port(host)
    while port2 == port:
        port2 = free_port(host)
    gw = None
    try:
        apply(api, manifests.docs(manifests.namespace("demo"), manifests.gateway_class(),
                                  GATEWAY.format(port=port, port2=port2)) + "---\n" +
              backend("svc-a", a.addr, a.port) + "---\n" + ROUTES)
        gw = start_k8s_gateway(api, host)
        check("tlsroute: ready", wait_for(lambda: ready(gw), 15))
        refl = [r for r in config(gw).get("reflectors", []) if r["kind"] == "TLSRoute"]
        check("tlsroute: a synced TLSRoute reflector holds the route",
              wait_for(lambda: [r for r in config(gw).get("reflectors", [])
                                if r["kind"] == "TLSRoute" and r["synced"] and
                                r["objects"] == 1], 10), refl)

        tp = wait_for(lambda: our_parents(kget(api, "tlsroute", "same")), 15, 0.2)
        check("tlsroute: status written on the TLSRoute, Accepted on the passthrough listener",
              tp and len(tp) == 1 and tp[0]["parentRef"].get("sectionName") == "pass" and
              conditions(tp[0]).get("Accepted") == "True", tp)
        hp = wait_for(lambda: our_parents(kget(api, "httproute", "same")), 15, 0.2)
        check("tlsroute: the HTTPRoute of the same name keeps its own parent only",
              hp and len(hp) == 1 and hp[0]["parentRef"].get("sectionName") == "http" and
              conditions(hp[0]).get("Accepted") == "True", hp)
        gws = (kget(api, "gateway", "gw") or {}).get("status") or {}
        ls = {x.get("name"): x.get("attachedRoutes") for x in gws.get("listeners") or []}
        check("tlsroute: one route attached to each listener",
              wait_for(lambda: {x.get("name"): x.get("attachedRoutes") for x in
                                ((kget(api, "gateway", "gw") or {}).get("status") or {})
                                .get("listeners") or []} == {"http": 1, "pass": 1}, 15, 0.2), ls)

        api.kubectl("delete", "tlsroute", "same", "-n", "demo")
        check("tlsroute: deleting the TLSRoute leaves the HTTPRoute's status alone",
              wait_for(lambda: {x.get("name"): x.get("attachedRoutes") for x in
                                ((kget(api, "gateway", "gw") or {}).get("status") or {})
                                .get("listeners") or []} == {"http": 1, "pass": 0}, 15, 0.2) and
              len(our_parents(kget(api, "httproute", "same"))) == 1)
    finally:
        if gw:
            check("tlsroute: gateway exits cleanly", stop(gw) == 0)
        stop(a)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
