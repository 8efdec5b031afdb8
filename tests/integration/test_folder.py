#!/usr/bin/env python3
"""--config-dir end to end: a folder of manifests (Gateway, HTTPRoutes, Services, EndpointSlices
pointing at serval-echo backends) served by the real binary; live changes, a broken file keeping
the last good generation, GET /config showing errors and route status."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import (check, finish, free_port, http_request, start_echo, start_gateway,  # noqa: E402
                    unique_addr)
from manifests import backend, docs, gateway, gateway_class, write_atomic  # noqa: E402

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: app, namespace: demo, generation: {gen}}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /a}}}}]
    backendRefs: [{{name: {a}, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /b}}}}]
    backendRefs: [{{name: svc-b, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /missing}}}}]
    backendRefs: [{{name: nowhere, port: 80}}]
"""


def get(host, port, path):
    try:
        return http_request(host, port, "GET", path, headers={"Host": "demo.test"}, timeout=3.0)
    except (OSError, EOFError, ValueError):
        return None


def pod_of(r):
    try:
        return r.json().get("pod") if r is not None and r.status == 200 else None
    except ValueError:
        return None


def wait_for(fn, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def config(gw):
    r = http_request(gw.admin[0], gw.admin[1], "GET", "/config", timeout=3.0)
    return json.loads(r.body) if r.status == 200 else {}


def route_conditions(cfg, name):
    for r in cfg.get("status", {}).get("httpRoutes", []):
        if r["name"] == name:
            return {c["type"]: (c["status"], c["reason"])
                    for p in r["status"]["parents"] for c in p["conditions"]}
    return {}


def main():
    a = start_echo(pod="web-a", ns="demo")
    b = start_echo(pod="web-b", ns="demo")
    host = unique_addr()
    port = free_port(host)
    d = tempfile.mkdtemp(prefix="sv-folder-")
    try:
        write_atomic(d, "gateway.yaml", docs(gateway_class(), gateway(port)))
        os.mkdir(os.path.join(d, "backends"))
        write_atomic(os.path.join(d, "backends"), "a.yaml", backend("svc-a", a.addr, a.port))
        write_atomic(os.path.join(d, "backends"), "b.yaml", backend("svc-b", b.addr, b.port))
        write_atomic(d, "route.yaml", ROUTE.format(a="svc-a", gen=1))
        gw = start_gateway(["--config-dir", d, "--bind", host, "--workers", "2"],
                           wait=(host, port))

        check("folder: /a served by web-a", pod_of(get(host, port, "/a/x")) == "web-a")
        if shutil.which("curl"):
            out = subprocess.run(["curl", "-s", "-m", "5", "-H", "Host: demo.test",
                                  f"http://{host}:{port}/a/curl"], capture_output=True,
                                 text=True, timeout=10).stdout
            try:
                pod = json.loads(out).get("pod")
            except ValueError:
                pod = None
            check("folder: curl through the gateway reaches web-a", pod == "web-a", out[:200])
        check("folder: /b served by web-b", pod_of(get(host, port, "/b")) == "web-b")
        r = get(host, port, "/nothing")
        check("folder: unmatched path is 404", r is not None and r.status == 404, r)
        r = get(host, port, "/missing")
        check("folder: backendRef to a missing Service is 500", r is not None and r.status == 500,
              r)
        cfg = config(gw)
        conds = route_conditions(cfg, "app")
        check("folder: /config shows the route Accepted", conds.get("Accepted") == ("True",
                                                                                   "Accepted"),
              conds)
        check("folder: /config shows ResolvedRefs BackendNotFound",
              conds.get("ResolvedRefs") == ("False", "BackendNotFound"), conds)
        check("folder: /config has no error", cfg.get("error") == "", cfg.get("error"))
        check("folder: /config describes the published routing generation",
              isinstance(cfg.get("routing"), dict) and "demo/app" in json.dumps(cfg["routing"]),
              str(cfg.get("routing"))[:300])

        # A live change: /a now goes to svc-b.
        gen0 = cfg.get("generation", 0)
        write_atomic(d, "route.yaml", ROUTE.format(a="svc-b", gen=2))
        check("folder: route change takes effect",
              wait_for(lambda: pod_of(get(host, port, "/a")) == "web-b"))
        check("folder: a new generation was published",
              wait_for(lambda: config(gw).get("generation", 0) > gen0))

        # Pods scaling: only an EndpointSlice changes -> endpoint-only update (route table kept).
        write_atomic(os.path.join(d, "backends"), "b.yaml", backend("svc-b", a.addr, a.port))
        check("folder: EndpointSlice change moves /b to web-a",
              wait_for(lambda: pod_of(get(host, port, "/b")) == "web-a"))
        check("folder: it was an endpoint-only update (/config catches up within a tick)",
              wait_for(lambda: config(gw).get("endpointOnlyUpdates", 0) >= 1),
              config(gw).get("endpointOnlyUpdates"))
        write_atomic(os.path.join(d, "backends"), "b.yaml", backend("svc-b", b.addr, b.port))
        check("folder: and back to web-b",
              wait_for(lambda: pod_of(get(host, port, "/b")) == "web-b"))

        # A broken file: the last good generation keeps serving, /config names the file.
        write_atomic(d, "broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: [oops]}\n")
        err = wait_for(lambda: config(gw).get("error"))
        check("folder: /config names the broken file and field",
              err and "broken.yaml" in err and "metadata.name" in err, err)
        check("folder: last good generation still serves /a",
              pod_of(get(host, port, "/a")) == "web-b")
        check("folder: last good generation still serves /b",
              pod_of(get(host, port, "/b")) == "web-b")

        os.unlink(os.path.join(d, "broken.yaml"))
        check("folder: error clears once the file is gone",
              wait_for(lambda: config(gw).get("error") == ""))

        # A route that attaches nowhere: status says why.
        write_atomic(d, "lost.yaml", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                     "metadata: {name: lost, namespace: demo}\n"
                     "spec:\n  parentRefs: [{name: gw, sectionName: nope}]\n")
        check("folder: unattached route reported NoMatchingParent",
              wait_for(lambda: route_conditions(config(gw), "lost").get("Accepted") ==
                       ("False", "NoMatchingParent")))

        # Deleting the route file removes its routes.
        os.unlink(os.path.join(d, "route.yaml"))
        check("folder: deleted route answers 404",
              wait_for(lambda: (get(host, port, "/b") or type("x", (), {"status": 0})).status
                       == 404))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
