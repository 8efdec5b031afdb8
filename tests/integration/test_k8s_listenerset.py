#!/usr/bin/python3
"""ListenerSets through the Kubernetes provider: a Gateway that allows ListenerSets from its own
namespace gets a ListenerSet's listener on another port; a route whose parentRef is the
ListenerSet is served there only; ListenerSet status and the Gateway's attachedListenerSets are
written; deleting the ListenerSet closes its listener. A cluster without the ListenerSet CRD
(404 on its LIST) still becomes ready."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROUTE, FakeAPI, apply, backend, base, conditions, config, get,  # noqa: E402
                     kget, our_parents, pod_of, ready, start_k8s_gateway, wait_for)
import manifests  # noqa: E402

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: demo}}
spec:
  gatewayClassName: serval
  allowedListeners: {{namespaces: {{from: Same}}}}
  listeners:
  - {{name: http, port: {port}, protocol: HTTP, hostname: gw.test}}
"""

LSET = """\
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: ls, namespace: demo}}
spec:
  parentRef: {{name: gw}}
  listeners:
  - {{name: extra, port: {port}, protocol: HTTP, hostname: ls.test}}
"""

LS_ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: via-ls, namespace: demo}
spec:
  parentRefs: [{kind: ListenerSet, name: ls}]
  rules:
  - backendRefs: [{name: svc-a, port: 80}]
"""


def status_of(api, kind, name):
    return (kget(api, kind, name) or {}).get("status") or {}


def without_crd():
    api = FakeAPI(bookmark_interval=1.0, extra_args=("--without-kind", "listenersets")).start()
    a = start_echo(pod="web-a", ns="demo")
    host = unique_addr()
    port = free_port(host)
    gw = None
    try:
        apply(api, base(port) + "---\n" + backend("svc-a", a.addr, a.port) + "---\n" +
              ROUTE.format(name="app", prefix="/", svc="svc-a"))
        gw = start_k8s_gateway(api, host)
        check("listenerset: ready without the ListenerSet CRD", wait_for(lambda: ready(gw), 15))
        refl = [r for r in config(gw).get("reflectors", []) if r["kind"] == "ListenerSet"]
        check("listenerset: its reflector counts as synced (empty)",
              len(refl) == 1 and refl[0]["synced"] and refl[0]["objects"] == 0, refl)
        check("listenerset: traffic flows without the CRD",
              wait_for(lambda: pod_of(get(host, port, "/x")) == "web-a", 10))
    finally:
        if gw:
            check("listenerset: gateway exits cleanly (no CRD)", stop(gw) == 0)
        stop(a)
        api.stop()


def with_listenerset():
    api = FakeAPI(bookmark_interval=1.0).start()
    a = start_echo(pod="web-a", ns="demo")
    host = unique_addr()
    port, port2 = free_port(host), free_port(host)
    while port2 == port:
        port2 = free_port(host)
    gw = None
    try:
        apply(api, manifests.docs(manifests.namespace("demo"), manifests.gateway_class(),
                                  GATEWAY.format(port=port)) + "---\n" +
              backend("svc-a", a.addr, a.port))
        gw = start_k8s_gateway(api, host)
        check("listenerset: ready", wait_for(lambda: ready(gw), 15))
        apply(api, LSET.format(port=port2) + "---\n" + LS_ROUTE)
        check("listenerset: route via the ListenerSet served on its listener",
              wait_for(lambda: pod_of(get(host, port2, "/x", "ls.test")) == "web-a", 10))
        r = get(host, port, "/x", "gw.test")
        check("listenerset: not on the Gateway's own listener", r is not None and r.status == 404,
              r and r.status)

        def ls_ok():
            st = status_of(api, "listenerset", "ls")
            ls = st.get("listeners") or []
            return conditions(st).get("Accepted") == "True" and \
                conditions(st).get("Programmed") == "True" and len(ls) == 1 and \
                ls[0].get("attachedRoutes") == 1
        check("listenerset: ListenerSet status Accepted/Programmed, 1 attached route",
              wait_for(ls_ok, 15, 0.2), status_of(api, "listenerset", "ls"))
        check("listenerset: Gateway status.attachedListenerSets is 1",
              wait_for(lambda: status_of(api, "gateway", "gw").get("attachedListenerSets") == 1,
                       15, 0.2), status_of(api, "gateway", "gw"))
        ps = wait_for(lambda: our_parents(kget(api, "httproute", "via-ls")), 15, 0.2)
        check("listenerset: route status parent is the ListenerSet",
              ps and ps[0]["parentRef"].get("kind") == "ListenerSet" and
              conditions(ps[0]).get("Accepted") == "True", ps)

        no_longer_ours(api, gw, host)

        api.kubectl("delete", "listenerset", "ls", "-n", "demo")
        check("listenerset: deleting the ListenerSet closes its listener",
              wait_for(lambda: get(host, port2, "/x", "ls.test") is None, 10))
        check("listenerset: Gateway status.attachedListenerSets back to 0",
              wait_for(lambda: status_of(api, "gateway", "gw").get("attachedListenerSets") == 0,
                       15, 0.2), status_of(api, "gateway", "gw"))
    finally:
        if gw:
            check("listenerset: gateway exits cleanly", stop(gw) == 0)
        stop(a)
        api.stop()


def reason(st, ctype):
    return {c["type"]: c.get("reason") for c in (st or {}).get("conditions", [])}.get(ctype)


def no_longer_ours(api, gw, host):
    """ListenerSets whose Gateway changes class (gw2) or is deleted (gw3) get the CRD's Pending
    status back instead of keeping ours; one whose status another controller wrote since (ls3)
    is left alone."""
    ports = []
    while len(ports) < 5:
        p = free_port(host)
        if p not in ports:
            ports.append(p)
    other_gw = GATEWAY.replace("name: gw,", "name: {gw},").replace("gw.test", "{gw}.test")
    lsets = [("ls2", "gw2"), ("ls3", "gw2"), ("ls4", "gw3")]
    apply(api, manifests.docs(
        other_gw.format(gw="gw2", port=ports[0]), other_gw.format(gw="gw3", port=ports[1]),
        *(LSET.replace("name: ls,", f"name: {ls},").replace("name: gw}", f"name: {g}}}")
          .replace("ls.test", f"{ls}.test").format(port=ports[2 + i])
          for i, (ls, g) in enumerate(lsets))))

    def accepted(ls):
        return conditions(status_of(api, "listenerset", ls)).get("Accepted") == "True"
    check("listenerset: ls2, ls3, ls4 Accepted by us",
          wait_for(lambda: all(accepted(ls) for ls, _ in lsets), 20, 0.2),
          [status_of(api, "listenerset", ls) for ls, _ in lsets])
    foreign = {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                               "message": "another controller", "observedGeneration": 1,
                               "lastTransitionTime": "2026-01-01T00:00:00Z"}], "listeners": []}
    r = api.kubectl("patch", "listenerset", "ls3", "-n", "demo", "--subresource", "status",
                    "--type", "merge", "-p", json.dumps({"status": foreign}))
    check("listenerset: another controller's status written to ls3", r.returncode == 0,
          r.stderr)
    api.kubectl("patch", "gateway", "gw2", "-n", "demo", "--type", "merge",
                "-p", '{"spec":{"gatewayClassName":"someone-else"}}')
    api.kubectl("delete", "gateway", "gw3", "-n", "demo")

    def pending(ls):
        st = status_of(api, "listenerset", ls)
        return reason(st, "Accepted") == "Pending" and reason(st, "Programmed") == "Pending" \
            and conditions(st).get("Accepted") == "Unknown" and not st.get("listeners")
    check("listenerset: its Gateway moved to another class -> ls2 status back to Pending",
          wait_for(lambda: pending("ls2"), 20, 0.2), status_of(api, "listenerset", "ls2"))
    check("listenerset: its Gateway deleted -> ls4 status back to Pending",
          wait_for(lambda: pending("ls4"), 20, 0.2), status_of(api, "listenerset", "ls4"))
    check("listenerset: the status writer has nothing left to do",
          wait_for(lambda: config(gw).get("statusWriter", {}).get("pending") == 0, 20, 0.2),
          config(gw).get("statusWriter"))
    st3 = status_of(api, "listenerset", "ls3")
    check("listenerset: ls3, written by another controller since, keeps that status",
          [c.get("message") for c in st3.get("conditions", [])] == ["another controller"], st3)


def main():
    without_crd()
    with_listenerset()
    finish()


if __name__ == "__main__":
    main()
