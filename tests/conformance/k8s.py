"""The cluster stand-in for the conformance runner: manifests into the fake API server, echo
"pods" for Deployments, EndpointSlices for Services, certificates the suite generates at setup.
Python standard library only."""
import base64
import copy
import os
import random
import string
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakeapi"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
# release binaries (make conformance builds them); SV_BIN_DIR=build/asan runs the ASan build
os.environ.setdefault("SV_BIN_DIR", os.path.join(ROOT, "build"))
import fake_apiserver  # noqa: E402
import miniyaml  # noqa: E402
import svtest  # noqa: E402
from client import FakeAPI  # noqa: E402,F401

CONTROLLER = "serval.dev/gateway-controller"
CLASS = "serval-conformance"
ECHO_IMAGE = "echo-basic"
HTTP_PORT = 3000
H2C_PORT = 3001  # echo-basic's h2c port (HTTP/2 with prior knowledge only)
HTTPS_PORT = 8443


class UnknownKind(Exception):
    pass


def kind_of(obj):
    api_version = obj.get("apiVersion", "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    for k in fake_apiserver.KINDS:
        if k.group == group and k.kind == obj.get("kind"):
            return k
    raise UnknownKind(f"{obj.get('kind')} ({api_version or 'v1'})")


def kind_by_name(kind, api_version=None):
    for k in fake_apiserver.KINDS:
        if k.kind == kind and (api_version is None or k.group == api_version.rpartition("/")[0]):
            return k
    raise UnknownKind(kind)


def obj_path(kd, ns, name=None, sub=None, version=None):
    v = version if version in kd.versions else kd.versions[0]
    p = f"/api/{v}" if not kd.group else f"/apis/{kd.group}/{v}"
    if kd.namespaced:
        p += f"/namespaces/{ns}"
    p += f"/{kd.plural}"
    if name:
        p += f"/{name}"
    if sub:
        p += f"/{sub}"
    return p


def rand_hash(n):
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def load_manifest(path):
    with open(path) as f:
        return miniyaml.load_all(f.read())


def prepare(obj, class_name=CLASS, controller=CONTROLLER):
    """What upstream's applier does to every object: Gateways get the suite's class, GatewayClasses
    the implementation's controller name."""
    obj = copy.deepcopy(obj)
    if obj.get("kind") == "Gateway":
        obj.setdefault("spec", {})["gatewayClassName"] = class_name
    if obj.get("kind") == "GatewayClass":
        obj.setdefault("spec", {})["controllerName"] = controller
    return obj


class Cluster:
    """Fake API server + echo pods + EndpointSlices on 127.<net>.x.y."""

    def __init__(self, workdir, log):
        self.workdir = workdir
        self.log = log
        self.api = None
        self.net = random.randrange(100, 250)
        self.pods = {}  # (ns, deployment) -> [proc with .addr/.pod/.labels]
        self.next_host = 0
        self.slices = {}  # (ns, service) -> slice name
        self.secret_files = {}

    # --- lifecycle

    def start(self):
        self.api = FakeAPI(state_dir=os.path.join(self.workdir, "fakeapi"), bookmark_interval=1.0,
                           namespace_finalize_delay=0.5).start()
        return self

    def stop(self):
        for procs in self.pods.values():
            for p in procs:
                svtest.stop(p, timeout=5.0)
        self.pods = {}
        if self.api:
            self.api.stop()

    def pod_addr(self):
        self.next_host += 1
        n = self.next_host
        return f"127.{self.net}.{1 + n // 250}.{1 + n % 250}"

    # --- objects

    def get(self, kd, ns, name):
        r = self.api.get(obj_path(kd, ns, name))
        return r.body if r.status == 200 else None

    def list(self, kd, ns=None):
        r = self.api.get(obj_path(kd, ns) if ns or not kd.namespaced else
                         (f"/api/{kd.versions[0]}" if not kd.group else
                          f"/apis/{kd.group}/{kd.versions[0]}") + f"/{kd.plural}")
        return r.body.get("items", []) if r.status == 200 else []

    def apply(self, obj):
        """Create obj, or update it (keeping status) when it exists. Returns (kind, previous
        object or None). Raises RuntimeError / UnknownKind."""
        kd = kind_of(obj)
        ns = obj.get("metadata", {}).get("namespace", "default") if kd.namespaced else None
        if kd.namespaced:
            obj["metadata"]["namespace"] = ns
        name = obj["metadata"]["name"]
        version = obj.get("apiVersion", "").rpartition("/")[2]
        r = self.api.create(obj_path(kd, ns, version=version), obj)
        if r.status in (200, 201):
            return kd, None
        if r.status != 409:
            raise RuntimeError(f"create {kd.kind} {ns}/{name}: {r.status} {r.raw[:300]!r}")
        for _ in range(5):
            cur = self.get(kd, ns, name)
            if cur is None:
                raise RuntimeError(f"update {kd.kind} {ns}/{name}: vanished")
            new = copy.deepcopy(obj)
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if "status" in cur:
                new["status"] = cur["status"]
            r = self.api.update(obj_path(kd, ns, name, version=version), new)
            if r.status == 200:
                return kd, cur
            if r.status != 409:
                raise RuntimeError(f"update {kd.kind} {ns}/{name}: {r.status} {r.raw[:300]!r}")
        raise RuntimeError(f"update {kd.kind} {ns}/{name}: conflicts")

    def delete(self, kd, ns, name):
        r = self.api.delete(obj_path(kd, ns, name))
        return r.status in (200, 202, 404)

    def restore(self, kd, prev):
        """Put back an object a case overwrote (spec, labels)."""
        ns = prev["metadata"].get("namespace")
        cur = self.get(kd, ns, prev["metadata"]["name"])
        if cur is None:
            new = copy.deepcopy(prev)
            for f in ("resourceVersion", "uid", "creationTimestamp", "generation"):
                new["metadata"].pop(f, None)
            self.api.create(obj_path(kd, ns), new)
            return
        new = copy.deepcopy(prev)
        new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        self.api.update(obj_path(kd, ns, prev["metadata"]["name"]), new)

    # --- pods and endpoints (what the kubelet and kube-controller-manager would do)

    def sync_workloads(self):
        """Start echo pods for Deployments that have none, stop pods of deleted Deployments, and
        write one EndpointSlice per Service with a selector. Returns a list of notes."""
        notes = []
        dk = kind_by_name("Deployment")
        want = {}
        for d in self.list(dk):
            want[(d["metadata"]["namespace"], d["metadata"]["name"])] = d
        for key in list(self.pods):
            if key not in want:
                for p in self.pods.pop(key):
                    svtest.stop(p, timeout=5.0)
        for key, d in want.items():
            if key in self.pods:
                continue
            self.pods[key] = []
            spec = d.get("spec", {})
            tmpl = spec.get("template", {})
            containers = tmpl.get("spec", {}).get("containers", [])
            if not containers or ECHO_IMAGE not in containers[0].get("image", ""):
                continue  # not an echo server (coredns, tcp echo...): no stand-in
            env = {e.get("name"): e.get("value") for e in containers[0].get("env", []) or []}
            args, tls_env = ["--threads", "1"], None
            if env.get("TLS_SERVER_CERT") or "HTTPS_PORT" in env:
                # serve HTTPS on 8443 like echo-basic, with the files its volumes would mount
                tls_env, missing = {}, []
                for var in ("TLS_SERVER_CERT", "TLS_SERVER_PRIVKEY", "TLS_CLIENT_CACERTS"):
                    if env.get(var):
                        f = self._mounted_file(key[0], containers[0], tmpl.get("spec", {}),
                                               env[var])
                        if f is None:
                            missing.append(f"{var}={env[var]}")
                        tls_env[var] = f or ""
                if missing or not tls_env.get("TLS_SERVER_CERT") or \
                        not tls_env.get("TLS_SERVER_PRIVKEY"):
                    notes.append(f"{key[0]}/{key[1]}: TLS echo files not found ({missing}); "
                                 "no pods")
                    continue
            rs = rand_hash(10)
            replicas = spec.get("replicas", 1)
            for _ in range(replicas if isinstance(replicas, int) else 1):
                pod = f"{key[1]}-{rs}-{rand_hash(5)}"
                addr = self.pod_addr()
                a = args + ["--h2c-listen", f"{addr}:{H2C_PORT}"] + \
                    (["--tls-listen", f"{addr}:{HTTPS_PORT}"] if tls_env else [])
                p = svtest.start_echo(addr=addr, port=HTTP_PORT, pod=pod, ns=key[0], args=a,
                                      env=tls_env)
                p.labels = (tmpl.get("metadata", {}) or {}).get("labels", {}) or {}
                p.ns = key[0]
                self.pods[key].append(p)
        self._sync_slices()
        return notes

    def _mounted_file(self, ns, container, pod_spec, path):
        """A local file with what a pod would read at <path>: the Secret or ConfigMap volume
        mounted over it (items key -> path, or the key itself). None when unresolved."""
        for m in container.get("volumeMounts") or []:
            mp = (m.get("mountPath") or "").rstrip("/")
            if not mp or not path.startswith(mp + "/"):
                continue
            rel = path[len(mp) + 1:]
            for v in pod_spec.get("volumes") or []:
                if v.get("name") != m.get("name"):
                    continue
                src = v.get("secret") or v.get("configMap") or {}
                name = src.get("secretName") or src.get("name")
                keyname = rel
                for it in src.get("items") or []:
                    if it.get("path") == rel:
                        keyname = it.get("key")
                return self.secret_pem_file(ns, name, keyname) if name else None
        return None

    def pods_matching(self, ns, selector):
        out = []
        for (pns, _), procs in self.pods.items():
            if pns != ns:
                continue
            for p in procs:
                if all(p.labels.get(k) == v for k, v in selector.items()):
                    out.append(p)
        return out

    def _sync_slices(self):
        sk = kind_by_name("Service")
        ek = kind_by_name("EndpointSlice")
        seen = set()
        for svc in self.list(sk):
            sel = (svc.get("spec") or {}).get("selector")
            if not sel:
                continue
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            seen.add((ns, name))
            pods = self.pods_matching(ns, sel)
            ports = []
            for sp in svc["spec"].get("ports", []):
                tp = sp.get("targetPort", sp.get("port"))
                if not isinstance(tp, int):
                    tp = HTTP_PORT
                ent = {"port": tp, "protocol": sp.get("protocol", "TCP")}
                if sp.get("name"):
                    ent["name"] = sp["name"]
                if sp.get("appProtocol"):
                    ent["appProtocol"] = sp["appProtocol"]
                ports.append(ent)
            eps = [{"addresses": [p.addr], "conditions": {"ready": True, "serving": True,
                                                          "terminating": False},
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": p.pod}} for p in pods]
            obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": f"{name}-conf", "namespace": ns,
                                "labels": {"kubernetes.io/service-name": name,
                                           "endpointslice.kubernetes.io/managed-by":
                                               "conformance-runner"}},
                   "addressType": "IPv4", "ports": ports, "endpoints": eps}
            cur = self.get(ek, ns, f"{name}-conf")
            if cur is not None and cur.get("endpoints", []) == eps and cur.get("ports") == ports:
                continue
            self.apply(obj)
        for s in self.list(ek):
            lab = s["metadata"].get("labels", {}) or {}
            if lab.get("endpointslice.kubernetes.io/managed-by") != "conformance-runner":
                continue
            if (s["metadata"]["namespace"], lab.get("kubernetes.io/service-name")) not in seen:
                self.delete(ek, s["metadata"]["namespace"], s["metadata"]["name"])

    # --- certificates (upstream MustCreateSelfSignedCertSecret / MustCreateCACertConfigMap...)

    def make_programmatic(self, spec):
        """Objects for base/programmatic-resources.json, made with openssl."""
        out = []
        cas = {}
        d = os.path.join(self.workdir, "certs")
        os.makedirs(d, exist_ok=True)
        for res in spec.get("resources", []):
            try:
                out.append(self._one_resource(res, d, cas))
            except (RuntimeError, OSError, KeyError) as e:
                self.log(f"programmatic resource {res.get('namespace')}/{res.get('name')}: {e}")
        return [o for o in out if o]

    def _openssl(self, *args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("openssl " + " ".join(args[:2]) + ": " + r.stderr[-300:])

    def _key(self, path):
        self._openssl("genrsa", "-traditional", "-out", path, "2048")

    def _sans(self, hosts):
        import ipaddress
        import re
        out = []
        for h in hosts or []:
            try:
                ipaddress.ip_address(h)
                out.append("IP:" + h)
                continue
            except ValueError:
                pass
            if re.match(r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*"
                        r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$", h):
                out.append("DNS:" + h)
            else:
                out.append("URI:" + h)
        return out

    def _one_resource(self, res, d, cas):
        kind, ns, name = res["kind"], res["namespace"], res["name"]
        base = os.path.join(d, f"{ns}--{name}")
        gen = res.get("generated_by", "")
        eku = {"serverAuth": "serverAuth", "clientAuth": "clientAuth"}.get(
            res.get("ext_key_usage", ""), None)
        sans = self._sans(res.get("hosts_argument"))
        if kind == "Secret" and "SelfSigned" in gen:
            self._key(base + ".key")
            self._openssl("req", "-new", "-x509", "-key", base + ".key", "-out", base + ".crt",
                          "-days", "365", "-subj", "/O=Acme Co/CN=default",
                          "-extensions", "v3", "-config", self._cfg(base, sans, eku, False))
            return self._secret(ns, name, base, res)
        if kind == "ConfigMap" or (kind == "Secret" and "CA" in gen and "Signed" not in gen):
            ca = res.get("ca") or {}
            cn = ca.get("subject_cn", "gatewayapi")
            org = ca.get("organization", "Kubernetes Gateway API")
            self._key(base + ".key")
            self._openssl("req", "-new", "-x509", "-key", base + ".key", "-out", base + ".crt",
                          "-days", "365", "-subj", f"/O={org}/CN={cn}",
                          "-extensions", "v3", "-config", self._cfg(base, [], None, True))
            cas[name] = base  # referenced by name only (upstream looks it up in infra)
            key = (res.get("keys") or ["ca.crt"])[0]
            with open(base + ".crt") as f:
                pem = f.read()
            return {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": ns}, "data": {key: pem}}
        if kind == "Secret":
            # a leaf signed by a CA made earlier in the list
            signer = cas.get(res.get("signed_by_ca_in_configmap"))
            if signer is None:
                raise RuntimeError(f"no CA ConfigMap {res.get('signed_by_ca_in_configmap')} "
                                   f"made before {ns}/{name}")
            self._key(base + ".key")
            cfg = self._cfg(base, sans, eku, False)
            self._openssl("req", "-new", "-key", base + ".key", "-out", base + ".csr",
                          "-subj", "/O=Acme Co/CN=default", "-config", cfg)
            self._openssl("x509", "-req", "-in", base + ".csr", "-CA", signer + ".crt",
                          "-CAkey", signer + ".key", "-CAcreateserial", "-out", base + ".crt",
                          "-days", "365", "-extensions", "v3", "-extfile", cfg)
            return self._secret(ns, name, base, res)
        raise RuntimeError(f"do not know how to make {kind} by {gen}")

    def _cfg(self, base, sans, eku, ca):
        path = base + ".cnf"
        ext = []
        if ca:
            ext += ["basicConstraints=critical,CA:TRUE",
                    "keyUsage=critical,keyCertSign,digitalSignature,cRLSign"]
        else:
            ext += ["keyUsage=critical,digitalSignature,keyEncipherment"]
        if eku:
            ext.append("extendedKeyUsage=" + eku)
        if sans:
            ext.append("subjectAltName=" + ",".join(sans))
        with open(path, "w") as f:
            f.write("[req]\ndistinguished_name=dn\n[dn]\n[v3]\n" + "\n".join(ext) + "\n")
        return path

    def _secret(self, ns, name, base, res):
        with open(base + ".crt", "rb") as f:
            crt = f.read()
        with open(base + ".key", "rb") as f:
            key = f.read()
        self.secret_files[(ns, name)] = (base + ".crt", base + ".key")
        return {"apiVersion": "v1", "kind": "Secret", "type": res.get("type", "kubernetes.io/tls"),
                "metadata": {"name": name, "namespace": ns},
                "data": {"tls.crt": base64.b64encode(crt).decode(),
                         "tls.key": base64.b64encode(key).decode()}}

    def secret_pem_file(self, ns, name, key="tls.crt"):
        """A file holding data[key] of a Secret (or ConfigMap) as stored in the fake server."""
        path = os.path.join(self.workdir, "certs", f"{ns}--{name}--{key}")
        sk = kind_by_name("Secret")
        obj = self.get(sk, ns, name)
        if obj is not None and key in (obj.get("data") or {}):
            data = base64.b64decode(obj["data"][key])
        else:
            cm = self.get(kind_by_name("ConfigMap"), ns, name)
            if cm is None or key not in (cm.get("data") or {}):
                return None
            data = cm["data"][key].encode()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path


def wait(fn, timeout, step=0.15):
    """Poll fn() until it returns (True, detail) or timeout; returns (ok, last detail)."""
    deadline = time.time() + timeout
    detail = ""
    while True:
        try:
            ok, detail = fn()
        except (OSError, ValueError, KeyError, TypeError) as e:
            ok, detail = False, f"error: {e}"
        if ok:
            return True, detail
        if time.time() >= deadline:
            return False, detail
        time.sleep(step)


def random_string(n):
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))
