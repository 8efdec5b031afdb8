#!/usr/bin/python3
"""The fake Kubernetes API server (tests/fakeapi) speaks the API server's wire protocol: TLS and
token auth, discovery, CRUD semantics (resourceVersion, generation, uid, 409, 404), the status
subresource, patches, LIST pagination, WATCH (ADDED/MODIFIED/DELETED/BOOKMARK, replay, 410 after
compaction) and every injected fault. Talks to it directly with the standard library."""
import json
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakeapi"))
from svtest import check, finish  # noqa: E402
import client  # noqa: E402
from client import FakeAPI, path_for  # noqa: E402

GW = "gateway.networking.k8s.io/v1"


def route(name, ns="demo", port=8080, labels=None):
    return {"apiVersion": GW, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"parentRefs": [{"name": "gw"}],
                     "rules": [{"backendRefs": [{"name": "echo", "port": port}]}]}}


def is_status(r, code, reason):
    b = r.body or {}
    return (r.status == code and b.get("kind") == "Status" and b.get("apiVersion") == "v1"
            and b.get("status") == "Failure" and b.get("code") == code
            and b.get("reason") == reason and isinstance(b.get("message"), str))


def rv(obj):
    return obj["metadata"]["resourceVersion"]


def test_tls_and_auth(api):
    # The served certificate verifies against the generated CA for IP 127.0.0.1 and localhost.
    for host in ("127.0.0.1", "localhost"):
        ctx = ssl.create_default_context(cafile=api.ca)
        with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=host) as t:
                check(f"tls: certificate verifies for {host}", t.version() in ("TLSv1.2", "TLSv1.3"))
    ctx = ssl.create_default_context()  # system CAs only: must fail
    try:
        with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
            ctx.wrap_socket(s, server_hostname="127.0.0.1").close()
        check("tls: unknown CA is rejected", False)
    except ssl.SSLCertVerificationError:
        check("tls: unknown CA is rejected", True)

    r = api.request("GET", "/api", token=None)
    check("auth: no token is 401 Status Unauthorized", is_status(r, 401, "Unauthorized"), r)
    r = api.request("GET", "/api", token="wrong")
    check("auth: wrong token is 401", r.status == 401, r)
    check("auth: right token is 200", api.get("/api").status == 200)
    old = api.token()
    new = api.rotate_token()
    check("auth: token file re-read: old token refused after rotation",
          api.request("GET", "/api", token=old).status == 401)
    check("auth: token file re-read: new token accepted",
          api.request("GET", "/api", token=new).status == 200)
    api.expire_token()
    r = api.get("/api")
    check("fault: expired token gives 401", is_status(r, 401, "Unauthorized"), r)
    api.reset_token()
    check("fault: token reset to the file", api.get("/api").status == 200)


def test_discovery(api):
    v = api.get("/version").body
    check("discovery: /version", v and v.get("major") == "1" and v.get("gitVersion", "").startswith("v1."))
    a = api.get("/api").body
    check("discovery: /api lists v1", a and a.get("kind") == "APIVersions" and "v1" in a["versions"])
    g = api.get("/apis").body
    groups = {x["name"]: [y["version"] for y in x["versions"]] for x in g["groups"]}
    check("discovery: /apis has gateway v1+v1beta1, discovery, coordination",
          g["kind"] == "APIGroupList" and groups.get("gateway.networking.k8s.io", [])[:2] == ["v1", "v1beta1"]
          and "v1" in groups.get("discovery.k8s.io", []) and "v1" in groups.get("coordination.k8s.io", []),
          groups)
    rl = api.get("/apis/gateway.networking.k8s.io/v1").body
    names = {x["name"]: x for x in rl["resources"]}
    check("discovery: gateway v1 resources", rl["kind"] == "APIResourceList"
          and rl["groupVersion"] == GW and names["httproutes"]["kind"] == "HTTPRoute"
          and names["httproutes"]["namespaced"] and not names["gatewayclasses"]["namespaced"]
          and "httproutes/status" in names and "watch" in names["httproutes"]["verbs"], sorted(names))
    rl = api.get("/apis/gateway.networking.k8s.io/v1beta1").body
    check("discovery: v1beta1 referencegrants", any(x["name"] == "referencegrants" for x in rl["resources"]))
    rl = api.get("/api/v1").body
    check("discovery: core v1 resources", {"namespaces", "services", "secrets", "endpoints"}
          <= {x["name"] for x in rl["resources"]})
    check("discovery: unknown group is 404", api.get("/apis/nope.example.com/v1").status == 404)


def test_crud(api):
    r = api.create(path_for("namespaces"), {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": "demo"}})
    ns = r.body
    check("create: namespace 201", r.status == 201, r)
    check("create: namespace label kubernetes.io/metadata.name",
          ns["metadata"]["labels"].get("kubernetes.io/metadata.name") == "demo")
    r = api.create(path_for("httproutes", "nope"), route("x", "nope"))
    check("create: missing namespace is 404 NotFound", is_status(r, 404, "NotFound")
          and 'namespaces "nope" not found' in r.body["message"], r)
    r = api.create(path_for("httproutes", "demo"), route("r1"))
    o = r.body
    m = o["metadata"]
    check("create: httproute 201 with apiVersion/kind", r.status == 201 and o["kind"] == "HTTPRoute"
          and o["apiVersion"] == GW, r)
    check("create: uid, creationTimestamp (RFC3339), generation 1, string RV",
          re.match(r"^[0-9a-f-]{36}$", m["uid"]) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                                                              m["creationTimestamp"])
          and m["generation"] == 1 and isinstance(m["resourceVersion"], str)
          and int(m["resourceVersion"]) > int(rv(ns)), m)
    check("create: CRD defaults (parentRef group/kind, backendRef weight, PathPrefix /)",
          o["spec"]["parentRefs"][0] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}
          and o["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1
          and o["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}], o["spec"])
    r = api.create(path_for("httproutes", "demo"), route("r1"))
    check("create: duplicate is 409 AlreadyExists", is_status(r, 409, "AlreadyExists"), r)
    r = api.create(path_for("httproutes", "demo"), dict(route("r9"), metadata={"name": "r9", "resourceVersion": "5"}))
    check("create: resourceVersion set is refused", r.status == 500, r)
    r = api.create(path_for("httproutes", "demo"), route("Bad_Name"))
    check("create: invalid name is 422 Invalid", is_status(r, 422, "Invalid"), r)
    g = api.get(path_for("httproutes", "demo", "r1"))
    check("get: same object", g.status == 200 and g.body == o, g)
    r = api.get(path_for("httproutes", "demo", "zz"))
    check("get: missing is 404 with group in message",
          is_status(r, 404, "NotFound") and r.body["message"] == 'httproutes.gateway.networking.k8s.io "zz" not found'
          and r.body["details"] == {"name": "zz", "group": "gateway.networking.k8s.io", "kind": "httproutes"}, r)

    # v1beta1 serves the same object.
    b = api.get(path_for("httproutes", "demo", "r1", version="v1beta1")).body
    check("get: v1beta1 view of a v1 object", b["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
          and b["metadata"]["uid"] == m["uid"])

    # Update: stale RV -> 409; no RV on a CRD -> 422; spec change bumps generation, labels do not.
    stale = dict(o)
    u = dict(o, spec=dict(o["spec"], hostnames=["a.example"]))
    r = api.update(path_for("httproutes", "demo", "r1"), u)
    o2 = r.body
    check("update: spec change -> 200, generation 2, new RV", r.status == 200
          and o2["metadata"]["generation"] == 2 and int(rv(o2)) > int(rv(o)), r)
    r = api.update(path_for("httproutes", "demo", "r1"), stale)
    check("update: stale resourceVersion is 409 Conflict", is_status(r, 409, "Conflict")
          and "the object has been modified" in r.body["message"], r)
    nor = dict(o2, metadata={k: v for k, v in o2["metadata"].items() if k != "resourceVersion"})
    r = api.update(path_for("httproutes", "demo", "r1"), nor)
    check("update: CRD without resourceVersion is 422", is_status(r, 422, "Invalid"), r)
    lab = dict(o2, metadata=dict(o2["metadata"], labels={"x": "y"}))
    o3 = api.update(path_for("httproutes", "demo", "r1"), lab).body
    check("update: metadata-only change keeps generation", o3["metadata"]["generation"] == 2
          and o3["metadata"]["labels"] == {"x": "y"} and int(rv(o3)) > int(rv(o2)), o3["metadata"])
    o4 = api.update(path_for("httproutes", "demo", "r1"), o3).body
    check("update: no-op keeps resourceVersion", rv(o4) == rv(o3), (rv(o4), rv(o3)))
    r = api.update(path_for("httproutes", "demo", "nothere"), dict(route("nothere"), metadata={"name": "nothere", "resourceVersion": "1"}))
    check("update: missing object is 404", r.status == 404, r)

    # Status subresource.
    withst = dict(o4, status={"parents": [{"controllerName": "x/y", "parentRef": {"name": "gw"}, "conditions": []}]})
    r = api.update(path_for("httproutes", "demo", "r1"), withst)
    check("status: main PUT ignores status", r.status == 200 and "status" not in r.body, r)
    cur = r.body
    st = dict(cur, spec={"parentRefs": []}, status=withst["status"])
    r = api.update(path_for("httproutes", "demo", "r1", "status"), st)
    check("status: PUT /status sets status, keeps spec and generation", r.status == 200
          and r.body["status"] == withst["status"] and r.body["spec"] == cur["spec"]
          and r.body["metadata"]["generation"] == cur["metadata"]["generation"]
          and int(rv(r.body)) > int(rv(cur)), r)
    cur = r.body
    r = api.update(path_for("httproutes", "demo", "r1", "status"),
                   {k: v for k, v in cur.items() if k != "status"})
    check("status: PUT /status without status deletes it", r.status == 200 and "status" not in r.body, r)
    r = api.update(path_for("httproutes", "demo", "r1", "status"), cur)
    check("status: stale RV on /status is 409", r.status == 409, r)
    r = api.patch(path_for("httproutes", "demo", "r1", "status"),
                  {"status": {"parents": []}, "spec": {"hostnames": ["zzz"]}})
    check("status: merge patch on /status changes only status", r.status == 200
          and r.body["status"] == {"parents": []} and r.body["spec"]["hostnames"] == ["a.example"], r)
    r = api.update(path_for("services", "demo", "x", "status"), {})
    check("status: unknown object /status is 404", r.status == 404, r)
    gc = api.create(path_for("gatewayclasses"), {"metadata": {"name": "serval"},
                                                 "spec": {"controllerName": "serval.dev/gw"}})
    check("status: GatewayClass gets the CRD's Pending condition", gc.status == 201
          and gc.body["status"]["conditions"][0]["reason"] == "Pending"
          and "namespace" not in gc.body["metadata"], gc)

    # Patches.
    p = path_for("httproutes", "demo", "r1")
    r = api.patch(p, {"metadata": {"labels": {"x": None, "y": "z"}}, "spec": {"hostnames": ["b.example"]}})
    check("patch: merge patch (null deletes, spec bump)", r.status == 200
          and r.body["metadata"]["labels"] == {"y": "z"} and r.body["spec"]["hostnames"] == ["b.example"]
          and r.body["metadata"]["generation"] == 3, r)
    cur = r.body
    r = api.patch(p, {"metadata": {"resourceVersion": "1"}, "spec": {"hostnames": []}})
    check("patch: stale resourceVersion in a patch is 409", r.status == 409, r)
    r = api.patch(p, [{"op": "test", "path": "/metadata/resourceVersion", "value": rv(cur)},
                      {"op": "replace", "path": "/spec/hostnames/0", "value": "c.example"}], "json")
    check("patch: json patch with test + replace", r.status == 200
          and r.body["spec"]["hostnames"] == ["c.example"], r)
    r = api.patch(p, [{"op": "test", "path": "/metadata/resourceVersion", "value": rv(cur)},
                      {"op": "remove", "path": "/spec/hostnames"}], "json")
    check("patch: json patch failing test is 422", r.status == 422, r)
    r = api.patch(p, {"spec": {}}, "strategic")
    check("patch: strategic merge on a CRD is 415", is_status(r, 415, "UnsupportedMediaType"), r)
    r = api.patch(p, {"spec": {}}, "text/plain")
    check("patch: unknown patch type is 415", r.status == 415, r)

    svc = api.create(path_for("services", "demo"), {"metadata": {"name": "echo"}, "spec": {
        "selector": {"app": "echo"}, "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}).body
    check("service: defaults (clusterIP, TCP, targetPort), no generation",
          svc["spec"]["clusterIP"].startswith("10.96.") and svc["spec"]["ports"][0]["protocol"] == "TCP"
          and svc["spec"]["ports"][1]["targetPort"] == 81 and "generation" not in svc["metadata"], svc)
    r = api.patch(path_for("services", "demo", "echo"),
                  {"spec": {"$setElementOrder/ports": [{"port": 81}, {"port": 82}],
                            "ports": [{"port": 82, "name": "c"}, {"$patch": "delete", "port": 80}]}},
                  "strategic")
    check("patch: strategic merge on a Service merges ports by key", r.status == 200
          and [x["port"] for x in r.body["spec"]["ports"]] == [81, 82]
          and r.body["spec"]["clusterIP"] == svc["spec"]["clusterIP"], r)
    es = api.create(path_for("endpointslices", "demo"), {
        "metadata": {"name": "echo-1"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}).body
    r = api.patch(path_for("endpointslices", "demo", "echo-1"),
                  {"ports": [{"name": "http", "port": 9090}],
                   "endpoints": [{"addresses": ["10.0.0.3"]}]}, "strategic")
    check("patch: strategic merge on an EndpointSlice replaces its atomic lists (ports, endpoints)",
          r.status == 200 and [x["port"] for x in r.body["ports"]] == [9090]
          and [x["addresses"] for x in r.body["endpoints"]] == [["10.0.0.3"]], (es, r))
    r = api.update(path_for("services", "demo", "echo"),
                   {"metadata": {"name": "echo"}, "spec": {"ports": [{"port": 9}]}})
    check("update: built-in kinds take an unconditional update, clusterIP kept", r.status == 200
          and r.body["spec"]["clusterIP"] == svc["spec"]["clusterIP"], r)
    r = api.patch(path_for("configmaps", "demo", "cfg"), {"apiVersion": "v1", "kind": "ConfigMap",
                                                          "data": {"a": "1"}}, "apply")
    check("patch: server-side apply without fieldManager is 422", r.status == 422, r)
    r = api.request("PATCH", path_for("configmaps", "demo", "cfg"),
                    {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}},
                    content_type="application/apply-patch+yaml", query={"fieldManager": "t"})
    check("patch: server-side apply creates", r.status == 201 and r.body["data"] == {"a": "1"}, r)
    r = api.create(path_for("configmaps", "demo"), {"metadata": {"name": "dry"}}, dryRun="All")
    check("dryRun=All create returns but does not store", r.status == 201
          and api.get(path_for("configmaps", "demo", "dry")).status == 404, r)

    # Secrets: stringData folded into data, type default.
    s = api.create(path_for("secrets", "demo"), {"metadata": {"name": "s1"}, "stringData": {"k": "v"}}).body
    check("secret: stringData -> data, type Opaque", s["data"] == {"k": "dg=="} and s["type"] == "Opaque", s)

    # Lease MicroTime.
    lp = path_for("leases", "demo")
    r = api.create(lp, {"metadata": {"name": "l1"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                                                              "renewTime": "2026-01-01T00:00:00Z"}})
    check("lease: MicroTime without 6 fraction digits is 400", r.status == 400, r)
    r = api.create(lp, {"metadata": {"name": "l1"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                                                              "acquireTime": "2026-01-01T00:00:00.000000Z",
                                                              "renewTime": "2026-01-01T00:00:00.123456Z"}})
    check("lease: create with MicroTime", r.status == 201 and "generation" not in r.body["metadata"], r)
    le = r.body
    le["spec"]["renewTime"] = "2026-01-01T00:00:02.000000Z"
    r1 = api.update(path_for("leases", "demo", "l1"), le)
    r2 = api.update(path_for("leases", "demo", "l1"), le)
    check("lease: renew PUT, then the same RV again is 409", r1.status == 200 and r2.status == 409, (r1, r2))

    # Delete.
    d = api.delete(path_for("httproutes", "demo", "r1"), {"kind": "DeleteOptions", "apiVersion": "v1",
                                                          "preconditions": {"uid": "nope"}})
    check("delete: uid precondition mismatch is 409", d.status == 409, d)
    d = api.delete(path_for("httproutes", "demo", "r1"))
    check("delete: 200 with the object", d.status == 200 and d.body["metadata"]["name"] == "r1", d)
    check("delete: then 404", api.get(path_for("httproutes", "demo", "r1")).status == 404)
    check("delete: again 404", api.delete(path_for("httproutes", "demo", "r1")).status == 404)


def test_list(api):
    base = path_for("configmaps", "pg")
    api.create(path_for("namespaces"), {"metadata": {"name": "pg"}})
    for i in range(7):
        api.create(base, {"metadata": {"name": f"c{i}", "labels": {"i": str(i), "odd": str(i % 2)}}})
    r = api.list(base, limit=3)
    b = r.body
    check("list: first page", r.status == 200 and b["kind"] == "ConfigMapList" and b["apiVersion"] == "v1"
          and [x["metadata"]["name"] for x in b["items"]] == ["c0", "c1", "c2"]
          and b["metadata"].get("continue") and b["metadata"].get("remainingItemCount") == 4, b["metadata"])
    check("list: built-in items carry no kind/apiVersion (typed encoding)", "kind" not in b["items"][0])
    list_rv = b["metadata"]["resourceVersion"]
    api.create(base, {"metadata": {"name": "c35"}})
    api.delete(path_for("configmaps", "pg", "c5"))
    r2 = api.list(base, limit=3, **{"continue": b["metadata"]["continue"]})
    r3 = api.list(base, limit=3, **{"continue": r2.body["metadata"]["continue"]})
    names = [x["metadata"]["name"] for x in r2.body["items"] + r3.body["items"]]
    check("list: later pages come from the first page's snapshot", names == ["c3", "c4", "c5", "c6"], names)
    check("list: same RV on every page, empty continue at the end",
          r2.body["metadata"]["resourceVersion"] == list_rv == r3.body["metadata"]["resourceVersion"]
          and not r3.body["metadata"].get("continue"), (r2.body["metadata"], r3.body["metadata"]))
    r = api.list(base, limit=3, resourceVersion="1", **{"continue": b["metadata"]["continue"]})
    check("list: resourceVersion with continue is 400", r.status == 400, r)
    items, _ = api.list_all(base, limit=2, labelSelector="odd=1")
    check("list: labelSelector with paging", [x["metadata"]["name"] for x in items] == ["c1", "c3"], items)
    r = api.list(base, labelSelector="i in (1,2),odd!=1")
    check("list: set-based labelSelector", [x["metadata"]["name"] for x in r.body["items"]] == ["c2"], r)
    r = api.list(base, labelSelector="!odd")
    check("list: !key labelSelector", [x["metadata"]["name"] for x in r.body["items"]] == ["c35"], r)
    r = api.list(path_for("configmaps"), fieldSelector="metadata.name=c4")
    check("list: all namespaces + fieldSelector metadata.name", [x["metadata"]["namespace"] for x in r.body["items"]] == ["pg"], r)
    r = api.list(base, fieldSelector="spec.foo=1")
    check("list: unsupported field selector is 400", r.status == 400, r)
    api.create(path_for("secrets", "pg"), {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
                                           "data": {"tls.crt": "", "tls.key": ""}})
    api.create(path_for("secrets", "pg"), {"metadata": {"name": "opaque"}})
    r = api.list(path_for("secrets"), fieldSelector="type=kubernetes.io/tls")
    check("list: secrets fieldSelector type=kubernetes.io/tls",
          [x["metadata"]["name"] for x in r.body["items"]] == ["tls"], r)
    api.create(path_for("endpointslices", "pg"), {"metadata": {"name": "e1", "labels": {"kubernetes.io/service-name": "a"}},
                                                  "addressType": "IPv4", "endpoints": [], "ports": []})
    api.create(path_for("endpointslices", "pg"), {"metadata": {"name": "e2", "labels": {"kubernetes.io/service-name": "b"}},
                                                  "addressType": "IPv4", "endpoints": [], "ports": []})
    r = api.list(path_for("endpointslices"), labelSelector="kubernetes.io/service-name=b")
    check("list: endpointslices by kubernetes.io/service-name",
          [x["metadata"]["name"] for x in r.body["items"]] == ["e2"], r)
    r = api.list(path_for("endpointslices"), labelSelector="kubernetes.io/service-name")
    check("list: exists selector", len(r.body["items"]) == 2, r)

    # Exact RV read from the history.
    r = api.list(base, resourceVersion=list_rv, resourceVersionMatch="Exact")
    check("list: resourceVersionMatch=Exact rebuilds the old state",
          [x["metadata"]["name"] for x in r.body["items"]] == [f"c{i}" for i in range(7)], r)

    # Expired continue tokens.
    r = api.list(base, limit=2)
    api.expire_continue()
    r2 = api.list(base, limit=2, **{"continue": r.body["metadata"]["continue"]})
    check("fault: expired continue token is 410 Expired with a fresh token",
          is_status(r2, 410, "Expired") and r2.body["metadata"].get("continue"), r2)
    r = api.list(base, limit=2)
    api.create(base, {"metadata": {"name": "c99"}})
    api.compact()
    r2 = api.list(base, limit=2, **{"continue": r.body["metadata"]["continue"]})
    check("fault: compaction expires continue tokens too", r2.status == 410, r2)


def test_watch(api):
    base = path_for("httproutes", "w")
    api.create(path_for("namespaces"), {"metadata": {"name": "w"}})
    a = api.create(base, route("a", "w")).body
    lst = api.list(base).body
    lrv = lst["metadata"]["resourceVersion"]
    w = api.watch(base, resourceVersion=lrv, allowWatchBookmarks="true", timeoutSeconds="30")
    check("watch: 200 chunked application/json", w.status == 200
          and w.headers.get("transfer-encoding") == "chunked"
          and w.headers.get("content-type") == "application/json", w.headers)
    api.create(base, route("b", "w"))
    b2 = api.patch(path_for("httproutes", "w", "b"), {"spec": {"hostnames": ["h"]}}).body
    api.delete(path_for("httproutes", "w", "a"))
    evs = w.events(3, timeout=10)
    check("watch: ADDED, MODIFIED, DELETED in order",
          [(e["type"], e["object"]["metadata"]["name"]) for e in evs]
          == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a")], evs)
    rvs = [int(rv(e["object"])) for e in evs]
    check("watch: event RVs increase, MODIFIED carries the new state",
          rvs == sorted(rvs) and rvs[0] > int(lrv) and evs[1]["object"] == b2
          and evs[1]["object"]["kind"] == "HTTPRoute", rvs)
    bm = None
    for _ in range(10):
        e = w.next_event(timeout=3)
        if e and e["type"] == "BOOKMARK":
            bm = e
            break
    check("watch: BOOKMARK arrives (interval 1 s) with only metadata.resourceVersion",
          bm is not None and bm["object"]["kind"] == "HTTPRoute"
          and set(bm["object"]["metadata"]) == {"resourceVersion"}
          and bm["object"]["apiVersion"] == GW
          and int(bm["object"]["metadata"]["resourceVersion"]) >= rvs[-1], bm)
    w.close()
    w = api.watch(path_for("namespaces"), resourceVersion=api.state()["rv"], allowWatchBookmarks="true")
    bm = w.next_event(5)
    check("watch: a built-in kind's BOOKMARK has creationTimestamp null (typed encoding)",
          bm and bm["type"] == "BOOKMARK" and bm["object"]["kind"] == "Namespace"
          and bm["object"]["metadata"].get("creationTimestamp", 0) is None, bm)
    w.close()

    # Replay from an older RV; synthetic ADDED without RV.
    w = api.watch(base, resourceVersion=lrv)
    evs = w.events(3, timeout=10)
    check("watch: replay from an older RV", [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"], evs)
    w.close()
    w = api.watch(base)
    evs = w.events(1, timeout=5)
    check("watch: no RV -> synthetic ADDED for existing objects",
          [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "b")], evs)
    w.close()
    w = api.watch(base, sendInitialEvents="true", resourceVersionMatch="NotOlderThan",
                  allowWatchBookmarks="true")
    e1, e2 = w.next_event(5), w.next_event(5)
    check("watch: sendInitialEvents ends with an annotated BOOKMARK",
          e1 and e1["type"] == "ADDED" and e2 and e2["type"] == "BOOKMARK"
          and e2["object"]["metadata"].get("annotations") == {"k8s.io/initial-events-end": "true"}, (e1, e2))
    w.close()

    # Label selector transitions.
    w = api.watch(base, resourceVersion=rv(b2), labelSelector="sel=yes")
    api.patch(path_for("httproutes", "w", "b"), {"metadata": {"labels": {"sel": "yes"}}})
    left = api.patch(path_for("httproutes", "w", "b"), {"metadata": {"labels": {"sel": "no"}}}).body
    evs = w.events(2, timeout=10)
    check("watch: entering/leaving a label selector is ADDED/DELETED",
          [e["type"] for e in evs] == ["ADDED", "DELETED"], evs)
    check("watch: DELETED on leaving carries the previous state at the new RV",
          len(evs) == 2 and evs[1]["object"]["metadata"]["labels"] == {"sel": "yes"}
          and rv(evs[1]["object"]) == rv(left), evs)
    w.close()

    # timeoutSeconds ends the stream cleanly.
    w = api.watch(base, resourceVersion=api.list(base).body["metadata"]["resourceVersion"],
                  timeoutSeconds="1")
    check("watch: timeoutSeconds ends the stream with the final chunk", w.wait_end(10) == "clean")
    w.close()

    # Compaction: a watch from before it gets an ERROR 410 event, then the end.
    api.compact()
    w = api.watch(base, resourceVersion=lrv)
    e = w.next_event(5)
    check("watch: RV older than compaction -> ERROR 410 Expired",
          w.status == 200 and e and e["type"] == "ERROR" and e["object"]["code"] == 410
          and e["object"]["reason"] == "Expired" and e["object"]["kind"] == "Status"
          and "too old resource version" in e["object"]["message"], e)
    check("watch: stream ends after the ERROR", w.wait_end(5) == "clean")
    w.close()
    cur = api.state()["rv"]
    w = api.watch(base, resourceVersion=cur)
    api.patch(path_for("httproutes", "w", "b"), {"spec": {"hostnames": ["after"]}})
    e = w.next_event(5)
    check("watch: from the current RV after compaction works", e and e["type"] == "MODIFIED", e)
    w.close()
    api.delete(path_for("namespaces", name="w"))
    check("namespace delete: Terminating first", api.get(path_for("namespaces", name="w")).body["status"]
          == {"phase": "Terminating"})
    r = api.create(base, route("c", "w"))
    check("namespace delete: create in a terminating namespace is 403", r.status == 403, r)


def test_faults(api):
    base = path_for("gateways", "f")
    api.create(path_for("namespaces"), {"metadata": {"name": "f"}})
    gw = {"metadata": {"name": "g"}, "spec": {"gatewayClassName": "serval",
                                              "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}
    g = api.create(base, gw).body
    check("gateway: defaults allowedRoutes from Same + Pending status",
          g["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
          and [c["type"] for c in g["status"]["conditions"]] == ["Accepted", "Programmed"], g)
    lrv = rv(g)

    # Drop all watches: abrupt by default, clean on request.
    w1 = api.watch(base, resourceVersion=lrv)
    w2 = api.watch(path_for("namespaces"), resourceVersion=lrv)
    time.sleep(0.3)
    check("state: open watches counted", api.state()["open_watches"] >= 2)
    api.drop_watches()
    check("fault: drop-watches closes every watch abruptly",
          w1.wait_end(5) == "abrupt" and w2.wait_end(5) == "abrupt", (w1.ended, w2.ended))
    w1.close()
    w2.close()
    w1 = api.watch(base, resourceVersion=lrv)
    time.sleep(0.2)
    api.drop_watches(partial=True)
    line = w1.next_line(5)
    check("fault: drop-watches partial=true cuts the stream inside an event",
          line is None and w1.ended == "abrupt" and w1._data.startswith(b'{"type":"MODIFIED"'),
          (w1.ended, w1._data[:60]))
    w1.close()
    w1 = api.watch(base, resourceVersion=lrv)
    time.sleep(0.2)
    api.drop_watches(clean=True)
    check("fault: drop-watches clean=true ends with the final chunk", w1.wait_end(5) == "clean")
    w1.close()

    # Malformed event line.
    w = api.watch(base, resourceVersion=lrv)
    time.sleep(0.2)
    api.malformed()
    e = w.next_event(5)
    check("fault: malformed event line delivered", e and e["type"] == "MALFORMED", e)
    w.close()

    # ERROR event on open watches.
    w = api.watch(base, resourceVersion=lrv)
    time.sleep(0.2)
    api.watch_error(500)
    e = w.next_event(5)
    check("fault: watch-error 500 sends an ERROR Status event and ends the stream",
          e and e["type"] == "ERROR" and e["object"]["code"] == 500 and w.wait_end(5) == "clean", e)
    w.close()

    # 500 and 429 on the next N requests, prefix-limited.
    api.inject_errors(500, count=2, prefix="/apis/gateway.networking.k8s.io/")
    r0 = api.get("/api/v1/namespaces")
    r1 = api.get(base)
    r2 = api.get(base)
    r3 = api.get(base)
    check("fault: 500 for the next 2 requests under a prefix", r0.status == 200
          and is_status(r1, 500, "InternalError") and r2.status == 500 and r3.status == 200,
          (r0.status, r1.status, r2.status, r3.status))
    api.inject_errors(429, count=1, retry_after=2)
    r = api.get(base)
    check("fault: 429 with Retry-After", is_status(r, 429, "TooManyRequests")
          and r.headers.get("retry-after") == "2" and r.body["details"]["retryAfterSeconds"] == 2, r)
    api.inject_errors(503, count=1, watch=True)
    r = api.get(base)
    w = api.watch(base, resourceVersion=lrv)
    check("fault: watch-only errors hit the watch, not the list", r.status == 200 and w.status == 503,
          (r.status, w.status))
    w.close()

    # Stall: requests are not answered while stalled, then are; watches hold events.
    w = api.watch(base, resourceVersion=rv(api.get(base + "/g").body))
    time.sleep(0.2)
    api.stall(3.0)
    t0 = time.time()
    try:
        api.request("GET", base, timeout=0.5)
        stalled = False
    except (socket.timeout, TimeoutError):
        stalled = True
    check("fault: stall leaves a request unanswered", stalled)
    time.sleep(max(0.0, 3.2 - (time.time() - t0)))
    r = api.patch(base + "/g", {"metadata": {"labels": {"a": "b"}}})
    e = w.next_event(5)
    check("fault: after the stall requests and watches resume", r.status == 200
          and e and e["type"] == "MODIFIED", (r, e))
    api.stall(3.0, scope="watch")
    api.patch(base + "/g", {"metadata": {"labels": {"a": "c"}}})
    early = w.next_event(0.5)
    late = w.next_event(5)
    check("fault: watch-scoped stall holds events, then delivers them",
          early is None and late and late["type"] == "MODIFIED"
          and late["object"]["metadata"]["labels"] == {"a": "c"}, (early, late))
    w.close()

    # RBAC emulation and the request log.
    api.clear_requests()
    api.set_rbac([{"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways"],
                   "verbs": ["get", "list", "watch"]}])
    ok = api.get(base)
    no = api.patch(base + "/g", {"metadata": {"labels": {"a": "d"}}})
    no2 = api.get(path_for("services", "f"))
    check("rbac: allowed verb 200, others 403 Forbidden", ok.status == 200
          and is_status(no, 403, "Forbidden") and no2.status == 403, (ok, no, no2))
    api.set_rbac(None)
    log = api.requests()
    verbs = [(e["verb"], e["resource"], e["code"]) for e in log]
    check("request log: verb/resource/code and user agent recorded",
          verbs == [("list", "gateways", 200), ("patch", "gateways", 403), ("list", "services", 403)]
          and all(e["user_agent"] == "fakeapi-test" for e in log), verbs)
    api.set_tokens({"gw-a": "token-a", "gw-b": "token-b"})
    api.clear_requests()
    ra = api.request("GET", "/api", token="token-a")
    rb = api.request("GET", "/api", token="token-b")
    rc = api.request("GET", "/api", token="token-c")
    users = [(e["user"], e["code"]) for e in api.requests()]
    check("tokens: extra identities accepted and named in the request log",
          ra.status == 200 and rb.status == 200 and rc.status == 401
          and users == [("gw-a", 200), ("gw-b", 200), (None, 401)], users)
    api.set_tokens({})
    check("tokens: removed again", api.request("GET", "/api", token="token-a").status == 401)
    objs = api.objects("gateways")
    check("admin: object dump", [o["metadata"]["name"] for o in objs] == ["g"]
          and objs[0]["kind"] == "Gateway")
    api.clear_faults()


def raw_exchange(api, reqs, timeout=5.0):
    """Send several requests on one TLS connection (keep-alive), each after the previous answer
    is complete; returns all raw bytes read (stops early when the server closes)."""
    ctx = api.ssl_context()
    out = b""
    with socket.create_connection(("127.0.0.1", api.port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            buf = b""
            for path in reqs:
                t.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                          f"{api.token()}\r\nAccept: application/json\r\n\r\n".encode())
                deadline = time.time() + timeout
                while time.time() < deadline:
                    head, sep, body = buf.partition(b"\r\n\r\n")
                    if sep:
                        m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                        if m and len(body) >= int(m.group(1)):
                            n = len(head) + 4 + int(m.group(1))
                            out, buf = out + buf[:n], buf[n:]
                            break
                        if not m and b"\r\n0\r\n\r\n" in b"\r\n" + body:
                            n = len(head) + 4 + (b"\r\n" + body).index(b"\r\n0\r\n\r\n") + 5
                            out, buf = out + buf[:n], buf[n:]
                            break
                    try:
                        b = t.recv(65536)
                    except (ssl.SSLError, OSError):
                        b = b""
                    if not b:
                        return out + buf
                    buf += b
    return out


def test_wire(api):
    base = path_for("configmaps", "wire")
    api.create(path_for("namespaces"), {"metadata": {"name": "wire"}})
    for i in range(30):
        api.create(base, {"metadata": {"name": f"big{i:02d}"}, "data": {"v": "x" * 200}})
    r = api.list(base)
    check("wire: a list over 2048 bytes is chunked (like Go)", r.status == 200
          and len(r.body["items"]) == 30 and "content-length" not in r.headers
          and r.headers.get("transfer-encoding") == "chunked", r.headers)
    g = api.get(base + "/big00")
    check("wire: a small object has Content-Length", g.headers.get("content-length") == str(len(g.raw)),
          g.headers)
    api.configure(response_encoding="length")
    r = api.list(base)
    check("wire: response_encoding=length", r.headers.get("content-length") == str(len(r.raw)), r.headers)
    api.configure(response_encoding="auto")
    for i in range(30, 700):
        api.create(base, {"metadata": {"name": f"big{i:03d}"}, "data": {"v": "x" * 200}})
    big = api.request("GET", base, headers={"Accept-Encoding": "gzip"})
    small = api.request("GET", base + "/big00", headers={"Accept-Encoding": "gzip"})
    plain = api.request("GET", base)
    import gzip
    try:
        n = len(json.loads(gzip.decompress(big.raw))["items"])
    except (OSError, ValueError):
        n = -1
    check("wire: Accept-Encoding gzip: a body over 128 KiB is gzipped, a small one is not",
          big.headers.get("content-encoding") == "gzip" and n == 700
          and "content-encoding" not in small.headers and "content-encoding" not in plain.headers
          and len(plain.raw) > 128 * 1024, (big.headers, n, len(plain.raw)))
    for i in range(30, 700):
        api.delete(base + f"/big{i:03d}")
    raw = raw_exchange(api, [base + "/big00", base + "/big01"])
    check("wire: keep-alive serves two requests on one connection",
          raw.count(b"HTTP/1.1 200 OK") == 2 and b'"big01"' in raw, raw[:200])
    r = api.list(base, resourceVersion="0", limit="5")
    check("wire: resourceVersion=0 ignores limit", len(r.body["items"]) == 30
          and not r.body["metadata"].get("continue"), r.body["metadata"])

    # A chunked request body and a lower-case auth scheme.
    ctx = api.ssl_context()
    body = json.dumps({"metadata": {"name": "chunked"}, "data": {"a": "b"}}).encode()
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(f"POST {base} HTTP/1.1\r\nHost: x\r\nAuthorization: bearer {api.token()}\r\n"
                      f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                      f"Connection: close\r\n\r\n".encode()
                      + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:]))
            resp = b""
            for _ in range(100):
                b = t.recv(65536)
                if not b:
                    break
                resp += b
    check("wire: chunked request body, 'bearer' scheme", resp.startswith(b"HTTP/1.1 201")
          and api.get(base + "/chunked").body["data"] == {"a": "b"}, resp[:200])

    # Events spanning chunk boundaries.
    api.configure(watch_chunk_size=7)
    lrv = api.list(base).body["metadata"]["resourceVersion"]
    w = api.watch(base, resourceVersion=lrv)
    api.patch(base + "/big00", {"data": {"v": "y"}})
    api.patch(base + "/big01", {"data": {"v": "z"}})
    evs = w.events(2, timeout=10)
    check("wire: watch_chunk_size=7 still frames events by newline",
          [e["object"]["data"]["v"] for e in evs] == ["y", "z"], evs)
    w.close()
    api.configure(watch_chunk_size=0)

    # 410 as a plain HTTP status at the start of a watch.
    api.compact()
    api.configure(watch_expired="http")
    w = api.watch(base, resourceVersion=lrv)
    check("wire: watch_expired=http answers HTTP 410 Expired", w.status == 410
          and (w.error or {}).get("reason") == "Expired", (w.status, w.error))
    w.close()
    api.configure(watch_expired="event")

    # Missing CRDs.
    api.configure(disabled_groups=["gateway.networking.k8s.io"])
    g = api.get("/apis").body
    r1 = api.get("/apis/gateway.networking.k8s.io")
    r2 = api.get(path_for("httproutes"))
    check("wire: disabled group vanishes from discovery, paths 404",
          all(x["name"] != "gateway.networking.k8s.io" for x in g["groups"])
          and r1.status == 404 and r2.status == 404, (r1.status, r2.status))
    api.configure(disabled_groups=[])
    check("wire: group back", api.get(path_for("httproutes")).status == 200)

    # 503 with Connection: close.
    api.inject_errors(503, count=1, close=True, retry_after=1)
    raw = raw_exchange(api, [base + "/big00", base + "/big00"])
    check("wire: close=true answers once and closes the connection",
          raw.count(b"HTTP/1.1 ") == 1 and b"503" in raw.split(b"\r\n")[0]
          and b"Connection: close" in raw, raw[:300])

    # Service account folder, kubelet-style.
    d = api.serviceaccount_dir("wire")
    t0 = open(os.path.join(d, "token")).read()
    t1 = api.rotate_token()
    check("serviceaccount: token/ca.crt/namespace via ..data, rotated atomically",
          t0 != t1 and open(os.path.join(d, "token")).read() == t1
          and open(os.path.join(d, "namespace")).read() == "wire"
          and os.path.islink(os.path.join(d, "..data"))
          and api.request("GET", "/api", token=t1).status == 200, d)


def test_restart_and_kubeconfig(api):
    base = path_for("configmaps", "rs")
    api.create(path_for("namespaces"), {"metadata": {"name": "rs"}})
    a = api.create(base, {"metadata": {"name": "a"}, "data": {"k": "1"}}).body
    w = api.watch(base, resourceVersion=rv(a))
    time.sleep(0.2)
    port = api.port
    api.restart(down_seconds=0.3)
    check("restart: open watch ends abruptly", w.wait_end(5) == "abrupt", w.ended)
    w.close()
    g = api.get(base + "/a")
    check("restart: same port, objects and resourceVersions kept", api.port == port
          and g.status == 200 and g.body == a, g)
    w = api.watch(base, resourceVersion=rv(a))
    b = api.create(base, {"metadata": {"name": "b"}}).body
    e = w.next_event(5)
    check("restart: watch resumes from a pre-restart RV", e and e["type"] == "ADDED"
          and e["object"]["metadata"]["name"] == "b" and int(rv(b)) > int(rv(a)), e)
    w.close()
    kc = api.write_kubeconfig(os.path.join(api.state_dir, "kc2"), inline_ca=False, token_file=True,
                              namespace=None)
    text = open(kc).read()
    check("kubeconfig variant: certificate-authority path and tokenFile",
          f"certificate-authority: {api.ca}" in text and f"tokenFile: {api.token_file}" in text
          and "namespace:" not in text and "token: " not in text, text)


def test_builders_and_concurrency(api):
    import threading
    objs = [client.namespace("b"), client.gatewayclass("serval2"), client.gateway("b", "gw"),
            client.httproute("b", "r", hostnames=["h.example"], backends=[("echo", 8080, 3)]),
            client.service("b", "echo"), client.endpointslice("b", "echo", ["127.0.0.1"], 8080)]
    stored = client.apply(api, objs)
    check("builders: apply creates a Gateway API stack", [o["kind"] for o in stored] ==
          ["Namespace", "GatewayClass", "Gateway", "HTTPRoute", "Service", "EndpointSlice"]
          and stored[3]["spec"]["rules"][0]["backendRefs"][0]["weight"] == 3, stored)
    objs[3] = client.httproute("b", "r", hostnames=["h2.example"])
    again = client.apply(api, objs[3:4])[0]
    check("builders: apply again replaces the spec (generation 2)",
          again["spec"]["hostnames"] == ["h2.example"] and again["metadata"]["generation"] == 2, again)

    # Optimistic concurrency: 4 writers x 15 read-modify-write increments, retrying on 409.
    p = path_for("configmaps", "b")
    api.create(p, {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    conflicts = []

    def writer():
        for _ in range(15):
            for _ in range(200):
                cur = api.get(p + "/counter").body
                cur["data"]["n"] = str(int(cur["data"]["n"]) + 1)
                r = api.update(p + "/counter", cur)
                if r.status == 200:
                    break
                conflicts.append(r.status)
    ts = [threading.Thread(target=writer) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    n = api.get(p + "/counter").body["data"]["n"]
    check("concurrency: no lost update under racing PUTs (only 409s refused)",
          n == "60" and set(conflicts) <= {409}, (n, set(conflicts), len(conflicts)))


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    try:
        for t in (test_tls_and_auth, test_discovery, test_crud, test_list, test_watch, test_faults,
                  test_wire, test_restart_and_kubeconfig, test_builders_and_concurrency):
            try:
                t(api)
            except Exception as e:  # a crash in one group must not hide the others
                import traceback
                traceback.print_exc()
                check(f"{t.__name__} ran to the end", False, repr(e))
    finally:
        api.stop()
    finish()


if __name__ == "__main__":
    main()
