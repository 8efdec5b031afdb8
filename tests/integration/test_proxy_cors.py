#!/usr/bin/env python3
"""The CORS filter through the real binary (--config-dir): preflights answered by the gateway
itself (never reaching the backend) with the Access-Control-* headers, 403 without them for a
disallowed origin; normal requests proxied with Access-Control-Allow-Origin (+Credentials,
+Expose-Headers, Vary) added for allowed origins only; wildcard origins and "*" lists; a
keep-alive connection serving a preflight then a proxied request; a rule with a bad origin
dropped with a clear status message while the valid rules serve."""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from manifests import backend, docs, gateway, gateway_class  # noqa: E402
from svtest import check  # noqa: E402

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: demo}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /list}}]
    filters:
    - type: CORS
      cors:
        allowOrigins: ["https://www.foo.com", "https://*.bar.com", "http://local.test:8080"]
        allowMethods: [GET, OPTIONS]
        allowHeaders: [x-header-1, x-header-2]
        exposeHeaders: [x-header-3]
        allowCredentials: true
        maxAge: 3600
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: X-Resp, value: from-route}]
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /star}}]
    filters:
    - type: CORS
      cors:
        allowOrigins: ["*"]
        allowMethods: ["*"]
        allowHeaders: ["*"]
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /bad}}]
    filters:
    - type: CORS
      cors:
        allowOrigins: ["https://www.foo.com/path"]
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: svc-a, port: 80}]
"""


def main():
    e = t.start_echo(pod="pod-a")
    host = t.unique_addr()
    port = t.free_port(host)
    d = tempfile.mkdtemp(prefix="sv-dp-cors-")
    with open(os.path.join(d, "all.yaml"), "w") as f:
        f.write(docs(gateway_class(), gateway(port), backend("svc-a", e.addr, e.port), ROUTE))
    gw = t.start_gateway(["--config-dir", d, "--bind", host, "--workers", "1"], wait=(host, port))
    H = {"Host": "demo.test"}

    def req(method, path, headers=None):
        return t.http_request(host, port, method, path, headers=dict(H, **(headers or {})))

    deadline = time.time() + 10
    r = req("GET", "/plain")
    while r.status != 200 and time.time() < deadline:
        time.sleep(0.1)
        r = req("GET", "/plain")
    check("cors: gateway serves", r.status == 200, r)
    before = t.echo_stats(e.addr, e.port)["requests"]

    pre = {"Origin": "https://www.foo.com", "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Headers": "x-header-1"}
    r = req("OPTIONS", "/list/a", pre)
    check("preflight: answered 200 by the gateway (no echo JSON)",
          r.status == 200 and r.header("content-type") is None and r.body == b"", (r, r.headers))
    check("preflight: origin echoed", r.header("access-control-allow-origin") ==
          "https://www.foo.com", r.headers)
    check("preflight: configured methods listed",
          r.header("access-control-allow-methods") == "GET, OPTIONS", r.headers)
    check("preflight: configured headers listed",
          r.header("access-control-allow-headers") == "x-header-1, x-header-2", r.headers)
    check("preflight: expose headers, max age, credentials",
          r.header("access-control-expose-headers") == "x-header-3" and
          r.header("access-control-max-age") == "3600" and
          r.header("access-control-allow-credentials") == "true", r.headers)
    check("preflight: Vary: Origin", r.header("vary") == "Origin", r.headers)
    r = req("OPTIONS", "/list/a", dict(pre, Origin="https://a.b.bar.com"))
    check("preflight: *.bar.com matches several labels",
          r.status == 200 and r.header("access-control-allow-origin") == "https://a.b.bar.com",
          r.headers)
    r = req("OPTIONS", "/list/a", dict(pre, Origin="https://bar.com"))
    check("preflight: *.bar.com does not match bar.com",
          r.status == 403 and r.header("access-control-allow-origin") is None, r.headers)
    r = req("OPTIONS", "/list/a", dict(pre, Origin="https://www.foo.com:8443"))
    check("preflight: another port is another origin", r.status == 403, r.headers)
    r = req("OPTIONS", "/list/a", dict(pre, Origin="https://www.foo.com:443"))
    check("preflight: the default port counts as absent", r.status == 200, r.headers)
    r = req("OPTIONS", "/list/a", dict(pre, Origin="http://LOCAL.test:8080"))
    check("preflight: host compares case-insensitively, explicit port",
          r.status == 200 and r.header("access-control-allow-origin") == "http://LOCAL.test:8080",
          r.headers)
    r = req("OPTIONS", "/list/a", dict(pre, Origin="https://foobar.com"))
    check("preflight: disallowed origin gets 403 without CORS headers",
          r.status == 403 and not any(k.lower().startswith("access-control-")
                                      for k, _ in r.headers), r.headers)
    after = t.echo_stats(e.addr, e.port)["requests"]
    check("preflight: never reaches the backend", after == before, (before, after))

    r = req("OPTIONS", "/list/a", {"Origin": "https://www.foo.com"})
    check("OPTIONS without Access-Control-Request-Method is proxied",
          r.status == 200 and r.json()["method"] == "OPTIONS", r)

    r = req("GET", "/list/a", {"Origin": "https://www.foo.com"})
    j = r.json()
    check("simple: proxied with Origin forwarded", r.status == 200 and
          j["headers"].get("Origin") == ["https://www.foo.com"], j)
    check("simple: allow-origin, credentials, expose added",
          r.header("access-control-allow-origin") == "https://www.foo.com" and
          r.header("access-control-allow-credentials") == "true" and
          r.header("access-control-expose-headers") == "x-header-3", r.headers)
    check("simple: no preflight-only headers",
          r.header("access-control-allow-methods") is None and
          r.header("access-control-max-age") is None, r.headers)
    check("simple: the rule's ResponseHeaderModifier still applies + Vary",
          r.header("x-resp") == "from-route" and "Origin" in r.header_all("vary"), r.headers)
    r = req("GET", "/list/a", {"Origin": "https://evil.com"})
    check("simple: disallowed origin proxied without CORS headers",
          r.status == 200 and r.header("access-control-allow-origin") is None, r.headers)
    r = req("GET", "/list/a")
    check("simple: no Origin, no CORS headers",
          r.status == 200 and r.header("access-control-allow-origin") is None, r.headers)
    r = req("GET", "/plain", {"Origin": "https://www.foo.com"})
    check("route without CORS: no CORS headers",
          r.status == 200 and r.header("access-control-allow-origin") is None, r.headers)

    r = req("OPTIONS", "/star", {"Origin": "https://x.example", "Access-Control-Request-Method":
                                 "PUT", "Access-Control-Request-Headers": "x-a, x-b"})
    check("star: origin, method and headers echoed, no credentials",
          r.status == 200 and r.header("access-control-allow-origin") == "https://x.example" and
          r.header("access-control-allow-methods") == "PUT" and
          r.header("access-control-allow-headers") == "x-a, x-b" and
          r.header("access-control-allow-credentials") is None and
          r.header("access-control-max-age") == "5", r.headers)
    r = req("OPTIONS", "/star", {"Origin": "https://x.example", "Access-Control-Request-Method":
                                 "PUT"})
    check("star: no Allow-Headers when the request did not ask",
          r.status == 200 and r.header("access-control-allow-headers") is None, r.headers)

    with t.Client(host, port) as c:
        r1 = c.request("OPTIONS", "/list/k", headers=dict(H, **pre))
        r2 = c.request("GET", "/list/k", headers=dict(H, Origin="https://x.bar.com"))
        r3 = c.request("GET", "/plain", headers=dict(H, Origin="https://x.bar.com"))
    check("keep-alive: preflight then proxied requests on one connection",
          r1.status == 200 and r2.status == 200 and r3.status == 200 and
          r2.header("access-control-allow-origin") == "https://x.bar.com" and
          r3.header("access-control-allow-origin") is None, (r1, r2, r3))

    r = req("OPTIONS", "/bad", pre)
    check("bad origin pattern: the rule is dropped (falls through to the default rule)",
          r.status == 200 and r.json()["path"] == "/bad", r)
    cfg = json.loads(t.http_request(gw.admin[0], gw.admin[1], "GET", "/config").body)
    conds = {c["type"]: c for c in
             cfg["status"]["httpRoutes"][0]["status"]["parents"][0]["conditions"]}
    pi = conds.get("PartiallyInvalid", {})
    check("bad origin pattern: PartiallyInvalid names the bad origin",
          pi.get("status") == "True" and "Dropped Rule 2: CORS allowOrigins" in pi.get("message", "")
          and "https://www.foo.com/path" in pi.get("message", ""), conds)
    check("bad origin pattern: the route stays Accepted",
          conds.get("Accepted", {}).get("status") == "True", conds)
    cors = [a["cors"] for a in cfg["routing"]["actions"] if "cors" in a]
    check("/config shows the compiled CORS filters", len(cors) == 2 and cors[0] == {
        "allowOrigins": ["https://www.foo.com", "https://*.bar.com", "http://local.test:8080"],
        "allowMethods": "GET, OPTIONS", "allowHeaders": "x-header-1, x-header-2",
        "exposeHeaders": "x-header-3", "maxAge": "3600", "allowCredentials": True}, cors)
    rc = t.stop(gw)
    check("cors gateway: clean exit", rc == 0 and gw.returncode == 0, gw.returncode)
    shutil.rmtree(d, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
