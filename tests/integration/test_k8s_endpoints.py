#!/usr/bin/python3
"""Kubernetes provider: an EndpointSlice change alone (pods scaling or moving) takes the
endpoint-only path (a generation sharing the route table, counted in /config
endpointOnlyUpdates) and traffic moves to the new endpoints; a Service change still rebuilds
everything (not counted)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROUTE, FakeAPI, apply, backend, base, config, get, pod_of,  # noqa: E402
                     start_k8s_gateway, wait_for)
from client import path_for  # noqa: E402
from manifests import service  # noqa: E402


def move_slice(api, addr, port):
    """Point EndpointSlice demo/svc-1 at <addr>:<port> (a merge patch replaces both lists; a
    client-side apply would merge the ports lists)."""
    r = api.patch(path_for("endpointslices", "demo", "svc-1"),
                  {"endpoints": [{"addresses": [addr], "conditions": {"ready": True}}],
                   "ports": [{"name": "http", "port": port}]})
    if r.status != 200:
        raise RuntimeError(f"patch EndpointSlice: {r.status}")


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    a = start_echo(pod="web-a", ns="demo")
    b = start_echo(pod="web-b", ns="demo")
    host = unique_addr()
    port = free_port(host)
    gw = None
    try:
        apply(api, base(port) + "---\n" + backend("svc", a.addr, a.port) + "---\n" +
              ROUTE.format(name="app", prefix="/a", svc="svc"))
        gw = start_k8s_gateway(api, host)
        check("k8s endpoints: /a served by web-a",
              wait_for(lambda: pod_of(get(host, port, "/a")) == "web-a", 15))
        before = config(gw)
        check("k8s endpoints: no endpoint-only update yet",
              before.get("endpointOnlyUpdates") == 0, before.get("endpointOnlyUpdates"))

        # the slice now points at web-b (same Service): endpoint-only path
        move_slice(api, b.addr, b.port)
        check("k8s endpoints: slice change -> /a served by web-b",
              wait_for(lambda: pod_of(get(host, port, "/a")) == "web-b", 10))
        after = wait_for(lambda: (lambda c: c if c.get("endpointOnlyUpdates", 0) >= 1 else None)(
            config(gw)), 5)
        check("k8s endpoints: the change took the endpoint-only path",
              after is not None and after.get("published", 0) > before.get("published", 0),
              (before.get("published"), after and after.get("published"),
               after and after.get("endpointOnlyUpdates")))

        # the slice back to web-a, and a Service change: full rebuild, not counted
        n = (after or {}).get("endpointOnlyUpdates", 0)
        move_slice(api, a.addr, a.port)
        check("k8s endpoints: slice back -> web-a",
              wait_for(lambda: pod_of(get(host, port, "/a")) == "web-a", 10))
        check("k8s endpoints: that was endpoint-only too",
              wait_for(lambda: config(gw).get("endpointOnlyUpdates", 0) == n + 1, 5),
              config(gw).get("endpointOnlyUpdates"))
        n = config(gw).get("endpointOnlyUpdates", 0)
        pub = config(gw).get("published", 0)
        apply(api, service("svc", target_port=a.port + 1).replace(
            "ports: [", "ports: [{name: extra, port: 81}, "))
        cfg = wait_for(lambda: (lambda c: c if c.get("published", 0) > pub else None)(
            config(gw)), 10)
        check("k8s endpoints: a Service change is a full rebuild",
              cfg is not None and cfg.get("endpointOnlyUpdates") == n,
              (pub, cfg and cfg.get("published"), n, cfg and cfg.get("endpointOnlyUpdates")))
        check("k8s endpoints: still served by web-a after the rebuild",
              wait_for(lambda: pod_of(get(host, port, "/a")) == "web-a", 10))
    finally:
        if gw:
            stop(gw)
        stop(a)
        stop(b)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
