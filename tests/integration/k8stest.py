"""Shared helpers for the Kubernetes provider tests (test_k8s_*.py): a fake API server, echo
backends and Gateway API manifests, and the serval-gateway started with --kubeconfig."""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "fakeapi"))
import manifests  # noqa: E402
from manifests import CONTROLLER, docs, gateway, gateway_class, namespace  # noqa: E402,F401
from svtest import http_request, start_gateway  # noqa: E402
from client import FakeAPI, path_for  # noqa: E402,F401

def base(port):
    """Namespace demo, GatewayClass serval and Gateway demo/gw with an HTTP listener on <port>."""
    return docs(namespace("demo"), gateway_class(), gateway(port))


def backend(name, addr, port):
    """Service demo/<name> (targetPort <port>) and its EndpointSlice -> <addr>:<port>."""
    return manifests.backend(name, addr, port, target_port=port)


ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: demo}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]
    backendRefs: [{{name: {svc}, port: 80}}]
"""


def apply(api, text):
    r = api.kubectl("apply", "-f", "-", input=text)
    if r.returncode != 0:
        raise RuntimeError(f"kubectl apply failed: {r.stderr}")
    return r


def get(host, port, path, hostname="demo.test"):
    try:
        return http_request(host, port, "GET", path, headers={"Host": hostname}, timeout=3.0)
    except (OSError, EOFError, ValueError):
        return None


def pod_of(r):
    try:
        return r.json().get("pod") if r is not None and r.status == 200 else None
    except ValueError:
        return None


def wait_for(fn, timeout=10.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def admin_get(gw, path):
    try:
        return http_request(gw.admin[0], gw.admin[1], "GET", path, timeout=3.0)
    except (OSError, EOFError, ValueError):
        return None


def config(gw):
    r = admin_get(gw, "/config")
    try:
        return json.loads(r.body) if r is not None and r.status == 200 else {}
    except ValueError:
        return {}


def ready(gw):
    r = admin_get(gw, "/readyz")
    return r is not None and r.status == 200


def start_k8s_gateway(api, host, extra=(), env=None, kubeconfig=None):
    return start_gateway(["--kubeconfig", kubeconfig or api.kubeconfig, "--bind", host,
                          "--workers", "1", *extra], env=env)


def kget(api, kind, name, ns="demo"):
    args = ["get", kind, name, "-o", "json"]
    if ns:
        args += ["-n", ns]
    r = api.kubectl(*args)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def conditions(status_obj):
    return {c["type"]: c["status"] for c in (status_obj or {}).get("conditions", [])}


def our_parents(route):
    return [p for p in ((route or {}).get("status") or {}).get("parents", [])
            if p.get("controllerName") == CONTROLLER]
