#!/usr/bin/python3
"""Kubernetes provider: an HTTPRoute change alone is served from an overlay generation first
(counted in /config incrementalUpdates, issue #3), then translated in full for the statuses,
which the API server gets (observedGeneration of the edit); after an endpoint-only update the
next route change is still incremental; a Service change is a full rebuild (not counted)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROUTE, FakeAPI, apply, backend, base, config, get, kget, our_parents,  # noqa: E402
                     pod_of, start_k8s_gateway, wait_for)
from client import path_for  # noqa: E402
from manifests import service  # noqa: E402


def accepted_generation(api, name):
    """observedGeneration of the Accepted=True condition our controller wrote on route <name>."""
    for p in our_parents(kget(api, "httproute", name)):
        for c in p.get("conditions", []):
            if c["type"] == "Accepted" and c["status"] == "True":
                return c.get("observedGeneration")
    return None


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    a = start_echo(pod="web-a", ns="demo")
    b = start_echo(pod="web-b", ns="demo")
    host = unique_addr()
    port = free_port(host)
    gw = None
    try:
        apply(api, base(port) + "---\n" + backend("svc-a", a.addr, a.port) + "---\n" +
              backend("svc-b", b.addr, b.port) + "---\n" +
              ROUTE.format(name="app", prefix="/a", svc="svc-a") + "---\n" +
              ROUTE.format(name="other", prefix="/o", svc="svc-b"))
        gw = start_k8s_gateway(api, host)
        check("k8s incremental: /a served by web-a",
              wait_for(lambda: pod_of(get(host, port, "/a")) == "web-a", 15))
        n0 = config(gw).get("incrementalUpdates", 0)

        # a route edit: /a now goes to svc-b
        apply(api, ROUTE.format(name="app", prefix="/a", svc="svc-b"))
        check("k8s incremental: the edit is served",
              wait_for(lambda: pod_of(get(host, port, "/a")) == "web-b", 10))
        check("k8s incremental: through an overlay (/config incrementalUpdates)",
              wait_for(lambda: config(gw).get("incrementalUpdates", 0) > n0, 5),
              (n0, config(gw).get("incrementalUpdates")))
        gen = (kget(api, "httproute", "app") or {}).get("metadata", {}).get("generation")
        check("k8s incremental: the full translation wrote the edit's status",
              gen is not None and wait_for(lambda: accepted_generation(api, "app") == gen, 10),
              (gen, accepted_generation(api, "app")))
        check("k8s incremental: the other route still answers",
              pod_of(get(host, port, "/o")) == "web-b")

        # an endpoint-only update, then another route edit: still incremental
        eo = config(gw).get("endpointOnlyUpdates", 0)
        r = api.patch(path_for("endpointslices", "demo", "svc-b-1"),
                      {"endpoints": [{"addresses": [a.addr], "conditions": {"ready": True}}],
                       "ports": [{"name": "http", "port": a.port}]})
        check("k8s incremental: slice moved", r.status == 200, r.status)
        check("k8s incremental: endpoint-only update served",
              wait_for(lambda: pod_of(get(host, port, "/a")) == "web-a", 10))
        check("k8s incremental: it was endpoint-only",
              wait_for(lambda: config(gw).get("endpointOnlyUpdates", 0) > eo, 5))
        n1 = config(gw).get("incrementalUpdates", 0)
        apply(api, ROUTE.format(name="app", prefix="/z", svc="svc-a"))
        check("k8s incremental: a route edit after it is served",
              wait_for(lambda: pod_of(get(host, port, "/z")) == "web-a", 10))
        check("k8s incremental: ... through an overlay again",
              wait_for(lambda: config(gw).get("incrementalUpdates", 0) > n1, 5),
              (n1, config(gw).get("incrementalUpdates")))

        # a Service change: full rebuild, not counted
        n2 = config(gw).get("incrementalUpdates", 0)
        pub = config(gw).get("published", 0)
        apply(api, service("svc-a", target_port=a.port).replace(
            "ports: [", "ports: [{name: extra, port: 81}, "))
        cfg = wait_for(lambda: (lambda c: c if c.get("published", 0) > pub else None)(
            config(gw)), 10)
        check("k8s incremental: a Service change is not incremental",
              cfg is not None and cfg.get("incrementalUpdates") == n2,
              (n2, cfg and cfg.get("incrementalUpdates")))
        check("k8s incremental: still served after the rebuild",
              wait_for(lambda: pod_of(get(host, port, "/z")) == "web-a", 10))
    finally:
        if gw:
            stop(gw)
        stop(a)
        stop(b)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
