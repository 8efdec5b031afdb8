#!/usr/bin/python3
"""A real kubectl can apply -f, get -o json, patch and delete Gateway API YAML against the fake
Kubernetes API server (tests/fakeapi), and a watch opened next to it sees what kubectl did.
Prints "skip - ..." and exits 0 when kubectl is not installed."""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "fakeapi"))
from svtest import check, finish  # noqa: E402
from client import FakeAPI, path_for  # noqa: E402

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: serval
spec:
  controllerName: serval.dev/gateway
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: demo
spec:
  gatewayClassName: serval
  listeners:
  - name: http
    port: 80
    protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r1
  namespace: demo
  labels:
    app: echo{LABEL}
spec:
  parentRefs:
  - name: gw
  hostnames: ["echo.example"]
  rules:
  - backendRefs:
    - name: echo
      port: {PORT}
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
spec:
  selector:
    app: echo
  ports:
  - name: http
    port: {PORT}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-abc12
  namespace: demo
  labels:
    kubernetes.io/service-name: echo
addressType: IPv4
ports:
- name: http
  port: {PORT}
endpoints:
- addresses: ["127.0.0.1"]
  conditions:
    ready: true
"""


def write(api, name, port=8080, label=""):
    p = os.path.join(api.state_dir, name)
    with open(p, "w") as f:
        f.write(MANIFEST.replace("{PORT}", str(port)).replace("{LABEL}", label))
    return p


def get_json(api, *args):
    r = api.kubectl("get", *args, "-o", "json")
    try:
        return json.loads(r.stdout) if r.returncode == 0 else None
    except ValueError:
        return None


def main():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("skip - kubectl not installed (Debian package kubernetes-client)")
        return
    api = FakeAPI(bookmark_interval=1.0, namespace_finalize_delay=3.0).start()
    try:
        run(api)
    finally:
        api.stop()
    finish()


def run(api):
    f1 = write(api, "v1.yaml")
    r = api.kubectl("apply", "-f", f1)
    check("kubectl apply -f creates all six objects", r.returncode == 0
          and r.stdout.count(" created") == 6, r.stdout + r.stderr)

    rt = get_json(api, "httproute", "-n", "demo", "r1")
    m = (rt or {}).get("metadata", {})
    check("kubectl get -o json: generation 1, uid, creationTimestamp",
          rt is not None and m.get("generation") == 1 and len(m.get("uid", "")) == 36
          and m.get("creationTimestamp", "").endswith("Z"), rt)
    check("kubectl get -o json: CRD defaults visible",
          rt and rt["spec"]["rules"][0]["backendRefs"][0].get("kind") == "Service", rt)
    ns = get_json(api, "namespace", "demo")
    check("kubectl get namespace: kubernetes.io/metadata.name label",
          ns and ns["metadata"]["labels"].get("kubernetes.io/metadata.name") == "demo"
          and ns["status"]["phase"] == "Active", ns)
    gc = get_json(api, "gatewayclass", "serval")
    check("kubectl get gatewayclass (cluster-scoped)", gc and gc["spec"]["controllerName"]
          == "serval.dev/gateway" and "namespace" not in gc["metadata"], gc)
    es = get_json(api, "endpointslices", "-A", "-l", "kubernetes.io/service-name=echo")
    check("kubectl get endpointslices -l kubernetes.io/service-name=echo",
          es and [i["metadata"]["name"] for i in es["items"]] == ["echo-abc12"], es)
    r = api.kubectl("get", "gateways", "-A")
    check("kubectl get (table printing) works", r.returncode == 0 and "gw" in r.stdout,
          r.stdout + r.stderr)
    r = api.kubectl("api-resources", "--api-group=gateway.networking.k8s.io")
    check("kubectl api-resources lists Gateway API kinds", r.returncode == 0
          and "httproutes" in r.stdout and "referencegrants" in r.stdout, r.stdout + r.stderr)

    # Watch next to kubectl from the current RV.
    lrv = api.list(path_for("httproutes", "demo")).body["metadata"]["resourceVersion"]
    w = api.watch(path_for("httproutes", "demo"), resourceVersion=lrv, allowWatchBookmarks="true")

    r = api.kubectl("apply", "-f", f1)
    rt2 = get_json(api, "httproute", "-n", "demo", "r1")
    check("apply unchanged: generation and uid unchanged", r.returncode == 0 and rt2
          and rt2["metadata"]["generation"] == 1 and rt2["metadata"]["uid"] == m.get("uid"),
          r.stderr)
    f2 = write(api, "v2.yaml", label="-x")
    r = api.kubectl("apply", "-f", f2)
    rt3 = get_json(api, "httproute", "-n", "demo", "r1")
    check("apply with a label change: generation unchanged", r.returncode == 0 and rt3
          and rt3["metadata"]["generation"] == 1 and rt3["metadata"]["labels"]["app"] == "echo-x",
          (r.stderr, rt3))
    f3 = write(api, "v3.yaml", port=8081, label="-x")
    r = api.kubectl("apply", "-f", f3)
    rt4 = get_json(api, "httproute", "-n", "demo", "r1")
    check("apply with a spec change: generation 2", r.returncode == 0 and rt4
          and rt4["metadata"]["generation"] == 2
          and rt4["spec"]["rules"][0]["backendRefs"][0]["port"] == 8081, (r.stderr, rt4))
    svc = get_json(api, "service", "-n", "demo", "echo")
    check("apply on a Service (strategic merge): ports replaced by key, clusterIP kept",
          svc and [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(8081, 8081)]
          and svc["spec"]["clusterIP"].startswith("10.96."), svc)
    es = get_json(api, "endpointslice", "-n", "demo", "echo-abc12")
    check("apply on an EndpointSlice (strategic merge): its atomic ports list is replaced whole",
          es and [(p["name"], p["port"]) for p in es["ports"]] == [("http", 8081)], es)
    r = api.kubectl("patch", "httproute", "-n", "demo", "r1", "--type", "merge",
                    "-p", '{"spec":{"hostnames":["other.example"]}}')
    rt5 = get_json(api, "httproute", "-n", "demo", "r1")
    check("kubectl patch --type merge: generation 3", r.returncode == 0 and rt5
          and rt5["metadata"]["generation"] == 3 and rt5["spec"]["hostnames"] == ["other.example"],
          (r.stderr, rt5))
    r = api.kubectl("patch", "httproute", "-n", "demo", "r1", "--subresource", "status",
                    "--type", "merge", "-p",
                    '{"status":{"parents":[{"controllerName":"serval.dev/gateway",'
                    '"parentRef":{"name":"gw"},"conditions":[]}]}}')
    rt6 = get_json(api, "httproute", "-n", "demo", "r1")
    check("kubectl patch --subresource status: status set, generation unchanged",
          r.returncode == 0 and rt6 and rt6["metadata"]["generation"] == 3
          and rt6["status"]["parents"][0]["controllerName"] == "serval.dev/gateway",
          (r.stderr, rt6))

    f4 = write(api, "v4.yaml", port=8082, label="-x")
    r = api.kubectl("apply", "--dry-run=server", "-f", f4)
    rt7 = get_json(api, "httproute", "-n", "demo", "r1")
    check("kubectl apply --dry-run=server changes nothing", r.returncode == 0
          and "(server dry run)" in r.stdout and rt7 and rt7["metadata"]["generation"] == 3
          and rt7["spec"]["rules"][0]["backendRefs"][0]["port"] == 8081, (r.stderr, rt7))
    r = api.kubectl("apply", "--server-side", "--force-conflicts", "-f", f4)
    rt8 = get_json(api, "httproute", "-n", "demo", "r1")
    check("kubectl apply --server-side applies (generation 4)", r.returncode == 0
          and rt8 and rt8["metadata"]["generation"] == 4
          and rt8["spec"]["rules"][0]["backendRefs"][0]["port"] == 8082, (r.stderr, rt8))
    es = get_json(api, "endpointslice", "-n", "demo", "echo-abc12")
    check("kubectl apply --server-side: EndpointSlice ports replaced whole",
          es and [(p["name"], p["port"]) for p in es["ports"]] == [("http", 8082)], es)
    r = api.kubectl("replace", "-f", write(api, "v5.yaml", port=8083, label="-x"))
    es = get_json(api, "endpointslice", "-n", "demo", "echo-abc12")
    check("kubectl replace (PUT): EndpointSlice ports replaced whole", r.returncode == 0
          and es and [(p["name"], p["port"]) for p in es["ports"]] == [("http", 8083)],
          (r.stderr, es))

    evs = w.events(3, timeout=10)
    gens = [(e["type"], e["object"]["metadata"]["generation"]) for e in evs]
    check("watch sees kubectl's changes in order", gens[:3] == [("MODIFIED", 1), ("MODIFIED", 2),
                                                                 ("MODIFIED", 3)], gens)

    log = api.requests()
    kube = [e for e in log if e["user_agent"].startswith("kubectl/")]
    bad = [e for e in kube if e["verb"] == "patch" and e["group"] == "gateway.networking.k8s.io"
           and e["content_type"].startswith("application/strategic-merge-patch")]
    check("request log: kubectl requests recorded with verbs", kube
          and {"get", "create", "patch"} <= {e["verb"] for e in kube}, len(kube))
    check("request log: kubectl sent merge patches (not strategic) to CRDs", not bad, bad)

    r = api.kubectl("delete", "-f", f4, timeout=60)
    check("kubectl delete -f deletes everything", r.returncode == 0
          and r.stdout.count(" deleted") == 6, r.stdout + r.stderr)
    r = api.kubectl("get", "httproute", "-n", "demo", "r1")
    check("kubectl get after delete: NotFound", r.returncode != 0 and "NotFound" in r.stderr,
          r.stderr)
    ev = None
    for _ in range(20):
        ev = w.next_event(5, skip_bookmarks=True)
        if ev is None or ev["type"] == "DELETED":
            break
    check("watch sees the DELETED event", ev and ev["type"] == "DELETED"
          and ev["object"]["metadata"]["name"] == "r1", ev)
    w.close()
    r = api.kubectl("get", "namespace", "demo")
    check("namespace gone after kubectl delete --wait", r.returncode != 0, r.stdout)

    # The Gateway API conformance base manifests, when the shared tree is next to the repo.
    # (Looked up next to the repository, or one level higher for a worktree in a subfolder.)
    conf = None
    for up in (os.path.dirname(ROOT), os.path.dirname(os.path.dirname(ROOT))):
        c = os.path.join(up, "shared", "conformance", "base", "manifests.yaml")
        if os.path.exists(c):
            conf = c
            break
    if conf:
        r = api.kubectl("apply", "-f", conf, timeout=90)
        check("conformance base manifests apply", r.returncode == 0, r.stderr[-2000:])
        gws = get_json(api, "gateways", "-A")
        deps = get_json(api, "deployments", "-A")
        check("conformance objects stored", gws and len(gws["items"]) == 4 and deps
              and len(deps["items"]) == 14, (gws and len(gws["items"]), deps and len(deps["items"])))
        r = api.kubectl("delete", "-f", conf, timeout=90)
        check("conformance base manifests delete", r.returncode == 0, r.stderr[-2000:])
    else:
        print("skip - conformance base manifests not found next to the repository")

    test_rbac(api)

    api.expire_token()
    r = api.kubectl("get", "namespaces")
    check("kubectl with an expired token: Unauthorized", r.returncode != 0
          and "Unauthorized" in r.stderr + r.stdout, r.stderr)
    api.reset_token()


RBAC = """\
apiVersion: v1
kind: Namespace
metadata:
  name: sys
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: gw
  namespace: sys
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: gw-read
rules:
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes/status"]
  verbs: ["update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: gw-read
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gw-read}
subjects:
- {kind: ServiceAccount, name: gw, namespace: sys}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: gw-lease
  namespace: sys
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: gw-lease
  namespace: sys
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: gw-lease}
subjects:
- {kind: ServiceAccount, name: gw, namespace: sys}
"""


def test_rbac(api):
    """RBAC objects applied with kubectl (as an unrestricted admin identity) are enforced on the
    token file's identity, bound to ServiceAccount sys/gw."""
    api.set_tokens({"admin": "admin-token"})
    kc = api.write_kubeconfig(os.path.join(api.state_dir, "admin.kubeconfig"), token="admin-token")
    f = os.path.join(api.state_dir, "rbac.yaml")
    with open(f, "w") as fh:
        fh.write(RBAC)
    r = api.kubectl("apply", "-f", f, kubeconfig=kc)
    check("rbac: kubectl applies ServiceAccount, (Cluster)Role(Binding)s", r.returncode == 0
          and r.stdout.count(" created") == 6, r.stdout + r.stderr)
    api.set_rbac(service_account="sys/gw")
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}}
    got = {
        "list httproutes (all namespaces)": api.list(path_for("httproutes")).status,
        "update httproutes/status": api.update(path_for("httproutes", "default", "x", "status"),
                                               {"metadata": {"name": "x"}}).status,
        "patch httproutes": api.patch(path_for("httproutes", "default", "x"), {}).status,
        "list services": api.list(path_for("services")).status,
        "create lease in sys": api.create(path_for("leases", "sys"), lease).status,
        "create lease in default": api.create(path_for("leases", "default"), lease).status,
        "delete lease in sys": api.delete(path_for("leases", "sys", "l")).status,
        "discovery": api.get("/apis/gateway.networking.k8s.io/v1").status,
    }
    want = {"list httproutes (all namespaces)": 200, "update httproutes/status": 404,
            "patch httproutes": 403, "list services": 403, "create lease in sys": 201,
            "create lease in default": 403, "delete lease in sys": 403, "discovery": 200}
    check("rbac: the bound rules decide (ClusterRole everywhere, Role in its namespace)",
          got == want, {k: (got[k], want[k]) for k in got if got[k] != want[k]})
    r = api.kubectl("delete", "lease", "-n", "sys", "l", kubeconfig=kc)
    check("rbac: other identities are not restricted", r.returncode == 0, r.stderr)
    api.set_rbac(None)
    deploy = os.path.join(ROOT, "deploy", "kustomization.yaml")
    if os.path.exists(deploy):
        r = api.kubectl("apply", "-k", os.path.dirname(deploy), kubeconfig=kc)
        check("kubectl apply -k deploy/ works against the fake", r.returncode == 0,
              r.stdout + r.stderr)
    api.set_tokens({})


if __name__ == "__main__":
    main()
