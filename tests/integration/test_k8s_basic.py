#!/usr/bin/python3
"""Kubernetes provider end to end: serval-gateway --kubeconfig against the fake API server;
kubectl applies a GatewayClass, Gateway, Services, EndpointSlices and HTTPRoutes pointing at
serval-echo backends; traffic flows; changes and deletes are followed; /readyz waits for the
first LIST of every kind; status conditions appear on the objects."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROUTE, FakeAPI, apply, backend, base, conditions, config, get,  # noqa: E402
                     kget, our_parents, pod_of, ready, start_k8s_gateway, wait_for)


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    a = start_echo(pod="web-a", ns="demo")
    b = start_echo(pod="web-b", ns="demo")
    host = unique_addr()
    port = free_port(host)
    gw = None
    try:
        apply(api, base(port))
        # readiness: every LIST is held by the server for a while -> not ready until it answers
        api.stall(2.0, scope="request")
        gw = start_k8s_gateway(api, host)
        check("k8s: /readyz is 503 before the first LIST completes", not ready(gw))
        check("k8s: /readyz is 200 once every reflector synced", wait_for(lambda: ready(gw), 10))
        cfg = config(gw)
        check("k8s: /config names the kubernetes provider and 12 synced reflectors",
              cfg.get("provider") == "kubernetes" and
              len([r for r in cfg.get("reflectors", []) if r["synced"]]) == 12, cfg)

        apply(api, backend("svc-a", a.addr, a.port) + "---\n" +
              backend("svc-b", b.addr, b.port) + "---\n" +
              ROUTE.format(name="app", prefix="/a", svc="svc-a"))
        check("k8s: kubectl apply -> /a served by web-a",
              wait_for(lambda: pod_of(get(host, port, "/a/x")) == "web-a", 10))

        apply(api, ROUTE.format(name="app", prefix="/a", svc="svc-b"))
        check("k8s: route change followed (/a now web-b)",
              wait_for(lambda: pod_of(get(host, port, "/a/x")) == "web-b", 10))

        apply(api, ROUTE.format(name="other", prefix="/o", svc="svc-a"))
        check("k8s: second route added", wait_for(lambda: pod_of(get(host, port, "/o")) == "web-a"))

        # status written back (this replica is alone: it wins the Lease)
        def route_ok():
            ps = our_parents(kget(api, "httproute", "app"))
            return ps and conditions(ps[0]).get("Accepted") == "True" and \
                conditions(ps[0]).get("ResolvedRefs") == "True"
        check("k8s: HTTPRoute status.parents has our Accepted/ResolvedRefs=True",
              wait_for(route_ok, 15, 0.2), kget(api, "httproute", "app"))
        gwobj = wait_for(lambda: (lambda g: g if conditions(g.get("status")).get("Programmed")
                                  == "True" else None)(kget(api, "gateway", "gw")), 10, 0.2)
        check("k8s: Gateway status Accepted and Programmed", gwobj is not None and
              conditions(gwobj["status"]).get("Accepted") == "True", kget(api, "gateway", "gw"))
        gc = wait_for(lambda: (lambda o: o if conditions(o.get("status")).get("Accepted") ==
                               "True" else None)(kget(api, "gatewayclass", "serval", ns=None)),
                      10, 0.2)
        check("k8s: GatewayClass status Accepted", gc is not None)
        if gwobj:
            c = [x for x in gwobj["status"]["conditions"] if x["type"] == "Programmed"][0]
            check("k8s: conditions carry observedGeneration and lastTransitionTime",
                  c.get("observedGeneration") == gwobj["metadata"]["generation"] and
                  c.get("lastTransitionTime", "").endswith("Z"), c)

        r = api.kubectl("delete", "httproute", "other", "-n", "demo")
        check("k8s: kubectl delete ok", r.returncode == 0, r.stderr)
        check("k8s: deleted route no longer served (404)",
              wait_for(lambda: (lambda x: x is not None and x.status == 404)(get(host, port, "/o"))))
        r = api.kubectl("delete", "endpointslice", "svc-b-1", "-n", "demo")
        check("k8s: EndpointSlice deleted -> 503 (no endpoints)",
              wait_for(lambda: (lambda x: x is not None and x.status == 503)(get(host, port, "/a"))))
        check("k8s: still ready after all that", ready(gw))
        cfg = config(gw)
        check("k8s: LIST/GET/writes reuse kept-alive connections",
              cfg.get("connectionsReused", 0) > 0, (cfg.get("connects"), cfg.get("connectionsReused")))
        reqs = api.requests()
        uas = {q.get("user_agent", "") for q in reqs if "serval" in q.get("user_agent", "")}
        check("k8s: requests carry User-Agent serval-gateway/<version>",
              any(u.startswith("serval-gateway/") for u in uas), uas)
    finally:
        if gw:
            rc = stop(gw)
            check("k8s: gateway exits cleanly on SIGTERM", rc == 0, rc)
        stop(a)
        stop(b)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
