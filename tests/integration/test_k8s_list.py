#!/usr/bin/python3
"""Large initial LIST: 1,100 Services and their EndpointSlices are read in pages of 500
(limit/continue, every page from one snapshot), the store holds all of them, a route to one of the
last ones works; a missing Gateway API (CRDs not installed) keeps the gateway not ready with a
clear log line, and it becomes ready once the API appears."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, read_log, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROUTE, FakeAPI, apply, base, config, get, path_for, pod_of,  # noqa: E402
                     ready, start_k8s_gateway, wait_for)

N = 1100


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    e = start_echo(pod="bulk-last", ns="demo")
    host = unique_addr()
    port = free_port(host)
    gw = None
    try:
        apply(api, base(port))
        for i in range(N):
            name = f"s{i:04d}"
            api.create(path_for("services", "demo"), {
                "metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": 80}]}})
            api.create(path_for("endpointslices", "demo"), {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": name + "-1", "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": e.port}],
                "endpoints": [{"addresses": [e.addr], "conditions": {"ready": True}}]})
        apply(api, ROUTE.format(name="app", prefix="/last", svc=f"s{N - 1:04d}"))
        api.configure(disabled_groups=["gateway.networking.k8s.io"])
        since = api.requests()[-1]["seq"]
        gw = start_k8s_gateway(api, host)
        check("list: not ready while the Gateway API is missing",
              not wait_for(lambda: ready(gw), 2.0))
        check("list: the missing API is logged clearly",
              "is this API installed" in read_log(gw), read_log(gw)[-400:])
        api.configure(disabled_groups=[])
        check("list: ready once the Gateway API appears", wait_for(lambda: ready(gw), 30))
        refl = {r["kind"]: r for r in config(gw)["reflectors"]}
        check("list: every Service and EndpointSlice in the store",
              refl["Service"]["objects"] == N and refl["EndpointSlice"]["objects"] == N, refl)
        pages = [r for r in api.requests(since)
                 if r.get("resource") == "services" and r.get("verb") == "list"]
        cont = [r for r in pages if r.get("query", {}).get("continue")]
        check("list: paged with limit=500 and continue (3 pages)",
              len(pages) == 3 and len(cont) == 2 and
              all(r.get("query", {}).get("limit") == "500" for r in pages),
              [(r.get("query"), r["code"]) for r in pages])
        check("list: a route to the last listed Service works",
              wait_for(lambda: pod_of(get(host, port, "/last")) == "bulk-last", 15))
    finally:
        if gw:
            check("list: clean exit", stop(gw) == 0)
        stop(e)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
