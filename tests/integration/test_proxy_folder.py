#!/usr/bin/env python3
"""The data plane applying what a --config-dir generation asks for: 503 for a Service without
ready endpoints, RequestRedirect, URLRewrite (ReplacePrefixMatch), request and response header
modifiers as the backend and the client see them, RequestMirror (the mirror backend gets a copy,
the client the main backend's answer), and a route's backendRequest timeout (504)."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from manifests import backend, docs, gateway, gateway_class, service  # noqa: E402
from svtest import check  # noqa: E402

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: demo}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /empty}}]
    backendRefs: [{name: svc-empty, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /redir}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, statusCode: 301}
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: set-by-route}]
        add: [{name: X-Add, value: added}]
        remove: [X-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: X-Resp, value: from-route}]
    backendRefs:
    - name: svc-a
      port: 80
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier:
          add: [{name: X-Backend, value: from-backend}]
          set: [{name: X-Add, value: backend-wins}]
      - type: ResponseHeaderModifier
        responseHeaderModifier:
          add: [{name: X-Resp-Be, value: from-backend}]
  - matches: [{path: {type: PathPrefix, value: /mirrored}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: svc-m, port: 80}}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /slow}}]
    timeouts: {backendRequest: 500ms}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: svc-a, port: 80}]
"""


def manifests(port, e, em):
    """Class and Gateway, Services svc-a (-> <e>), svc-m (-> <em>), svc-empty (no endpoints), and
    the route."""
    return docs(gateway_class(), gateway(port), backend("svc-a", e.addr, e.port),
                backend("svc-m", em.addr, em.port), service("svc-empty"), ROUTE)


def main():
    e = t.start_echo(pod="pod-a")
    em = t.start_echo(pod="pod-m")
    host = t.unique_addr()
    port = t.free_port(host)
    d = tempfile.mkdtemp(prefix="sv-dp-folder-")
    with open(os.path.join(d, "all.yaml"), "w") as f:
        f.write(manifests(port, e, em))
    gw = t.start_gateway(["--config-dir", d, "--bind", host, "--workers", "2"], wait=(host, port))
    H = {"Host": "demo.test"}

    def get(path, headers=None, timeout=5.0):
        return t.http_request(host, port, "GET", path, headers=dict(H, **(headers or {})),
                              timeout=timeout)

    deadline = time.time() + 10
    r = get("/plain")
    while r.status != 200 and time.time() < deadline:
        time.sleep(0.1)
        r = get("/plain")
    check("folder: default rule proxies to svc-a", r.status == 200 and r.json()["pod"] == "pod-a",
          r)
    r = get("/empty/x")
    check("503: Service without ready endpoints", r.status == 503, r)
    with t.Client(host, port) as c:
        r1 = c.request("GET", "/empty/1", headers=H)
        r2 = c.request("GET", "/plain2", headers=H)
    check("503: keep-alive connection still usable after a 503",
          r1.status == 503 and r2.status == 200, (r1, r2))
    r = get("/redir/path?q=1")
    check("redirect: 301 with https Location", r.status == 301 and
          r.header("location") == "https://demo.test/redir/path?q=1", (r, r.headers))
    r = get("/old/thing?z=2", headers={"X-Remove": "gone", "X-Set": "client", "X-Keep": "k"})
    j = r.json()
    h = j["headers"]
    check("rewrite: ReplacePrefixMatch /old -> /new with query kept",
          j["path"] == "/new/thing?z=2", j["path"])
    check("header mods: set replaces the client's value", h.get("X-Set") == ["set-by-route"], h)
    check("header mods: backendRef's set overrides the rule's add of the same name",
          h.get("X-Add") == ["backend-wins"], h)
    check("header mods: backendRef-level add applied too", h.get("X-Backend") == ["from-backend"],
          h)
    check("header mods: remove removes", "X-Remove" not in h, h)
    check("header mods: other headers kept", h.get("X-Keep") == ["k"], h)
    check("response header mods: added on the way back", r.header("x-resp") == "from-route",
          r.headers)
    check("response header mods: backendRef-level too", r.header("x-resp-be") == "from-backend",
          r.headers)
    before = t.echo_stats(em.addr, em.port)["requests"]
    codes = [get(f"/mirrored/{i}") for i in range(3)]
    check("mirror: the client gets the main backend's answers",
          all(r.status == 200 and r.json()["pod"] == "pod-a" for r in codes), codes)
    deadline = time.time() + 5
    after = before
    while after - before < 3 and time.time() < deadline:
        time.sleep(0.05)
        after = t.echo_stats(em.addr, em.port)["requests"]
    check("mirror: the mirror backend received a copy of each request", after - before == 3,
          (before, after))
    check("mirror: copies carry the request path",
          t.wait_log(em, r"request made to /mirrored/2", 3) is not None)
    t0 = time.monotonic()
    r = get("/slow/x?delay=3s", timeout=10)
    took = time.monotonic() - t0
    check("route timeout: backendRequest 500ms gives 504", r.status == 504, r)
    check("route timeout: well before the backend's 3 s", took < 2.5, took)
    rc = t.stop(gw)
    check("folder gateway: clean exit", rc == 0 and gw.returncode == 0, gw.returncode)
    shutil.rmtree(d, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
