#!/usr/bin/python3
"""deploy/rbac.yaml's ClusterRole holds exactly what the client uses: the fake API server enforces
the parsed rules (403 outside them) while the gateway syncs, serves, writes status, holds and
releases its Lease; every request it sent must be inside the role (request log), none denied, and
every verb in the role must have been used at least once (no spare permissions)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROOT, ROUTE, FakeAPI, apply, backend, base, conditions, get,  # noqa: E402
                     kget, our_parents, pod_of, ready, start_k8s_gateway, wait_for)


LSET = """\
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: ls, namespace: demo}
spec:
  parentRef: {name: gw}
  listeners:
  - {name: extra, port: 8081, protocol: HTTP}
"""


def cluster_role_rules(path):
    """The rules of the ClusterRole in a multi-document YAML file written with flow sequences
    (apiGroups: ["a", "b"]); enough YAML for our own deploy/ file."""
    rules = []
    with open(path) as f:
        docs = f.read().split("\n---")
    for doc in docs:
        lines = [ln.split("#", 1)[0].rstrip() for ln in doc.splitlines()]
        if "kind: ClusterRole" not in lines:
            continue
        cur = None
        for ln in lines:
            s = ln.strip()
            if s.startswith("- apiGroups:"):
                cur = {}
                rules.append(cur)
                s = s[2:]
            for key in ("apiGroups", "resources", "verbs"):
                if cur is not None and s.startswith(key + ":"):
                    cur[key] = json.loads(s[len(key) + 1:].strip())
    return rules


POLICY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: pol, namespace: demo}
spec:
  targetRefs: [{group: "", kind: Service, name: svc-t}]
  validation: {caCertificateRefs: [{group: "", kind: ConfigMap, name: no-such-ca}], hostname: t.example}
"""


TLSROUTE = """\
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: tls, namespace: demo}
spec:
  parentRefs: [{name: gw}]
  hostnames: [t.example]
  rules:
  - backendRefs: [{name: svc-a, port: 80}]
"""


def allowed(rules, group, resource, verb):
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
               for r in rules)


def main():
    rules = cluster_role_rules(os.path.join(ROOT, "deploy", "rbac.yaml"))
    check("rbac: ClusterRole rules parsed", len(rules) >= 5 and all(
        set(r) == {"apiGroups", "resources", "verbs"} for r in rules), rules)
    api = FakeAPI(bookmark_interval=1.0).start()
    a = start_echo(pod="web-a", ns="demo")
    host = unique_addr()
    port = free_port(host)
    gw = None
    try:
        apply(api, base(port) + "---\n" +
              backend("svc-a", a.addr, a.port))
        api.set_rbac(rules)
        since = api.requests()[-1]["seq"]
        gw = start_k8s_gateway(api, host)
        check("rbac: ready under the role", wait_for(lambda: ready(gw), 15))

        def unrestricted(fn):
            """kubectl (the test's own client) runs without the role; the gateway's requests in
            that short window are still checked against it from the request log."""
            api.set_rbac(None)
            try:
                return fn()
            finally:
                api.set_rbac(rules)

        unrestricted(lambda: apply(api, ROUTE.format(name="app", prefix="/a", svc="svc-a")))
        check("rbac: traffic flows", wait_for(lambda: pod_of(get(host, port, "/a")) == "web-a"))
        check("rbac: status written under the role",
              wait_for(lambda: (lambda p: p and conditions(p[0]).get("Accepted") == "True")(
                  our_parents(unrestricted(lambda: kget(api, "httproute", "app")))), 15, 0.3))
        unrestricted(lambda: apply(api, ROUTE.format(name="app2", prefix="/b", svc="svc-a")))
        wait_for(lambda: our_parents(unrestricted(lambda: kget(api, "httproute", "app2"))), 15,
                 0.3)
        # a ListenerSet of demo/gw (not allowed: the Gateway has no allowedListeners): its
        # status is still ours to write (get + listenersets/status update)
        unrestricted(lambda: apply(api, LSET))
        check("rbac: ListenerSet status written under the role",
              wait_for(lambda: conditions((unrestricted(lambda: kget(api, "listenerset", "ls"))
                                            or {}).get("status")).get("Accepted") == "False",
                       15, 0.3))
        # a BackendTLSPolicy on a Service a route uses: its status (ancestors) is written too
        unrestricted(lambda: apply(api, backend("svc-t", a.addr, a.port) + "---\n" +
                                   ROUTE.format(name="app3", prefix="/t", svc="svc-t") + "---\n" +
                                   POLICY))
        check("rbac: BackendTLSPolicy status written under the role",
              wait_for(lambda: ((unrestricted(lambda: kget(api, "backendtlspolicy", "pol")) or {})
                                .get("status") or {}).get("ancestors"), 15, 0.3))
        # a TLSRoute on demo/gw (no passthrough listener there: not accepted); its status is
        # written through the v1alpha2 tlsroutes/status subresource
        unrestricted(lambda: apply(api, TLSROUTE))
        check("rbac: TLSRoute status written under the role",
              wait_for(lambda: our_parents(unrestricted(lambda: kget(api, "tlsroute", "tls"))),
                       15, 0.3))
    finally:
        if gw:
            rc = stop(gw)  # releases the Lease (an update)
            check("rbac: gateway exits cleanly", rc == 0, rc)
        reqs = [r for r in api.requests(since) if r.get("user_agent", "").startswith("serval-gateway/")]
        stop(a)
        api.stop()
    outside = [(r["method"], r["path"], r.get("verb")) for r in reqs
               if not allowed(rules, r.get("group") or "", r.get("resource", "") +
                              ("/" + r["subresource"] if r.get("subresource") else ""),
                              r.get("verb"))]
    check("rbac: the gateway sent requests", len(reqs) > 20, len(reqs))
    check("rbac: no request outside the ClusterRole", not outside, outside[:10])
    check("rbac: nothing denied", not [r for r in reqs if r["code"] == 403],
          [(r["method"], r["path"]) for r in reqs if r["code"] == 403][:5])
    used = {(r.get("group") or "", r.get("resource", "") +
             ("/" + r["subresource"] if r.get("subresource") else ""), r.get("verb")) for r in reqs}
    spare = [(g, res, v) for rule in rules for g in rule["apiGroups"] for res in rule["resources"]
             for v in rule["verbs"] if (g, res, v) not in used]
    check("rbac: every permission in the role is used (no spare verbs)", not spare, spare)
    finish()


if __name__ == "__main__":
    main()
