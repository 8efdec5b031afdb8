"""Test helper for the fake Kubernetes API server (Python 3 standard library only).

    sys.path.insert(0, os.path.join(ROOT, "tests", "fakeapi"))
    from client import FakeAPI, path_for

    api = FakeAPI(bookmark_interval=1.0).start()     # free ports, temp state dir, waits for ready
    api.create(path_for("namespaces"), {"metadata": {"name": "demo"}})
    r = api.create(path_for("httproutes", "demo"), {...})   # -> Response(status, headers, body)
    w = api.watch(path_for("httproutes", "demo"), resourceVersion=r.body["metadata"]["resourceVersion"],
                  allowWatchBookmarks="true")
    ev = w.next_event(timeout=5)                      # dict, or None on timeout; w.ended when over
    api.inject_errors(500, count=2, prefix="/apis/")  # faults: see FakeAPI methods
    api.requests()                                    # request log (method, path, query, verb, ...)
    api.kubectl("apply", "-f", "x.yaml")              # runs kubectl with the fake's kubeconfig
    api.stop()

Every wait is bounded. The server's output goes to <state_dir>/server.log (and its request log
to <state_dir>/requests.log); both stay after stop() when the caller gave a state_dir.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_apiserver.py")
sys.path.insert(0, HERE)
import fake_apiserver  # noqa: E402  (the resource table)

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def path_for(plural, ns=None, name=None, sub=None, version=None):
    """URL path of a collection or an object, e.g. path_for("httproutes", "demo", "r1", "status").
    version defaults to the kind's preferred version (v1)."""
    kd = next((k for k in fake_apiserver.KINDS if k.plural == plural), None)
    if kd is None:
        raise KeyError(plural)
    v = version or kd.versions[0]
    p = f"/api/{v}" if not kd.group else f"/apis/{kd.group}/{v}"
    if kd.namespaced and ns:
        p += f"/namespaces/{ns}"
    p += f"/{plural}"
    if name:
        p += f"/{name}"
    if sub:
        p += f"/{sub}"
    return p


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers  # lower-case name -> value (last one wins)
        self.raw = raw
        try:
            self.body = json.loads(raw) if raw else None
        except ValueError:
            self.body = None

    def __repr__(self):
        return f"Response({self.status}, {self.raw[:300]!r})"


class WatchEnded(Exception):
    pass


class Watch:
    """One WATCH stream over its own TLS connection, de-chunked by hand so that a test can tell
    a clean end (final chunk) from an abrupt close. Events are split on newlines."""

    def __init__(self, api, path, query, token, timeout=10.0):
        self.status = None
        self.headers = {}
        self.error = None
        self.ended = None  # None while open, "clean" after the final chunk, "abrupt" on EOF/reset
        self._raw = b""
        self._data = b""
        self._left = 0  # bytes left in the current chunk (+2 for its CRLF once known)
        self._in_chunk = False
        raw = socket.create_connection(("127.0.0.1", api.port), timeout=timeout)
        self.sock = api.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
        qs = urllib.parse.urlencode(query)
        req = (f"GET {path}?{qs} HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\n"
               f"Accept: application/json\r\nUser-Agent: fakeapi-test-watch\r\n")
        if token is not None:
            req += f"Authorization: Bearer {token}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self._raw:
            if not self._recv(deadline):
                raise WatchEnded("no response head")
        head, _, self._raw = self._raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            n = int(self.headers.get("content-length", "0"))
            while len(self._raw) < n and self._recv(deadline):
                pass
            try:
                self.error = json.loads(self._raw[:n])
            except ValueError:
                self.error = self._raw[:n]
            self.ended = "clean"
            self.close()

    def _recv(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            b = b""
        if not b:
            if self.ended is None:
                self.ended = "abrupt"
            return False
        self._raw += b
        return True

    def _dechunk(self):
        for _ in range(1000000):
            if self.ended:
                return
            if self._in_chunk:
                if not self._raw:
                    return
                if self._left > 2:
                    take = min(len(self._raw), self._left - 2)
                    self._data += self._raw[:take]
                    self._raw = self._raw[take:]
                    self._left -= take
                    continue
                if len(self._raw) < self._left:
                    return
                self._raw = self._raw[self._left:]  # the chunk's CRLF
                self._in_chunk = False
                continue
            i = self._raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self._raw[:i].split(b";")[0], 16)
            self._raw = self._raw[i + 2:]
            if size == 0:
                self.ended = "clean"
                return
            self._in_chunk = True
            self._left = size + 2

    def next_line(self, timeout=5.0):
        """The next newline-terminated line (bytes, without the newline); None on timeout or when
        the stream has ended (see self.ended)."""
        deadline = time.time() + timeout
        while True:
            self._dechunk()
            i = self._data.find(b"\n")
            if i >= 0:
                line, self._data = self._data[:i], self._data[i + 1:]
                return line
            if self.ended or not self._recv(deadline):
                return None

    def next_event(self, timeout=5.0, skip_bookmarks=False):
        """The next event as a dict ({"type", "object"}); None on timeout or end of stream.
        A line that is not JSON comes back as {"type": "MALFORMED", "line": bytes}."""
        deadline = time.time() + timeout
        while True:
            line = self.next_line(max(0.0, deadline - time.time()))
            if line is None:
                return None
            try:
                ev = json.loads(line)
            except ValueError:
                return {"type": "MALFORMED", "line": line}
            if skip_bookmarks and ev.get("type") == "BOOKMARK":
                continue
            return ev

    def events(self, n, timeout=5.0, skip_bookmarks=True):
        """Up to n events within timeout seconds overall."""
        out = []
        deadline = time.time() + timeout
        while len(out) < n:
            ev = self.next_event(max(0.0, deadline - time.time()), skip_bookmarks)
            if ev is None:
                break
            out.append(ev)
        return out

    def wait_end(self, timeout=5.0):
        """Read (and drop) until the stream ends; returns self.ended (None if still open)."""
        deadline = time.time() + timeout
        while not self.ended and time.time() < deadline:
            self.next_line(max(0.0, deadline - time.time()))
        return self.ended

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class FakeAPI:
    def __init__(self, state_dir=None, bookmark_interval=1.0, extra_args=(), token=None,
                 namespace_finalize_delay=1.0):
        self._own_dir = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="fakeapi-")
        os.makedirs(self.state_dir, exist_ok=True)
        stale = os.path.join(self.state_dir, "store.json")
        if os.path.exists(stale):
            os.unlink(stale)  # a new FakeAPI starts empty; restart() keeps the store
        self._atexit = False
        self.token_file = os.path.join(self.state_dir, "token")
        with open(self.token_file, "w") as f:
            f.write((token or "test-token-" + os.urandom(8).hex()) + "\n")
        self.port = 0
        self.admin_port = 0
        self.args = [PY, SERVER, "--persist", "--state-dir", self.state_dir, "--token-file", self.token_file,
                     "--log", os.path.join(self.state_dir, "requests.log"),
                     "--bookmark-interval", str(bookmark_interval),
                     "--namespace-finalize-delay", str(namespace_finalize_delay), *extra_args]
        self.proc = None
        self._ctx = None
        self._pool = []
        self._pool_lock = threading.Lock()

    # --- lifecycle

    def start(self, timeout=30.0):
        ready = os.path.join(self.state_dir, "ready.json")
        if os.path.exists(ready):
            os.unlink(ready)
        if getattr(self, "_log", None):
            self._log.close()
        self._log = open(os.path.join(self.state_dir, "server.log"), "ab")
        args = self.args + ["--listen", f"127.0.0.1:{self.port}",
                            "--admin-listen", f"127.0.0.1:{self.admin_port}"]
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        deadline = time.time() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("fake apiserver did not start; see "
                                   + os.path.join(self.state_dir, "server.log"))
            time.sleep(0.05)
        with open(ready) as f:
            info = json.load(f)
        self.port = info["port"]
        self.admin_port = info["admin_port"]
        self.server = info["server"]
        self.ca = info["ca"]
        self.kubeconfig = info["kubeconfig"]
        self._ctx = None
        return self

    def restart(self, down_seconds=0.0, timeout=30.0):
        """Stop the server (SIGTERM: open connections die) and start it again on the same ports
        with the same objects, history and resourceVersions (--persist), like an apiserver
        restart in front of the same etcd. Faults and the request log start empty."""
        self._stop_proc()
        if down_seconds:
            time.sleep(down_seconds)
        return self.start(timeout)

    def write_kubeconfig(self, path, inline_ca=True, token_file=False, namespace="default",
                         token=None):
        """Write a kubeconfig variant for this server: certificate-authority as a path
        (inline_ca=False), tokenFile: instead of token: (token_file=True), a context namespace
        (None = none), another token (e.g. one given to set_tokens). Returns path."""
        fake_apiserver.write_kubeconfig(path, self.server, self.ca, token or self.token(),
                                        self.token_file if token_file else None,
                                        inline_ca=inline_ca, namespace=namespace)
        return path

    def _stop_proc(self):
        with self._pool_lock:
            for c in self._pool:
                c.close()
            self._pool = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def stop(self):
        """Stop the server; removes the state dir when it was a temporary one (unless the
        environment has FAKEAPI_KEEP)."""
        self._stop_proc()
        if self._own_dir and os.environ.get("FAKEAPI_KEEP") is None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self._own_dir = False

    # --- token

    def token(self):
        with open(self.token_file) as f:
            return f.read().strip()

    def rotate_token(self, new=None):
        """Write a new token to the token file (atomically) and return it. The service account
        folder, if made, is updated too, the kubelet's way."""
        new = new or "test-token-" + os.urandom(8).hex()
        tmp = self.token_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(new + "\n")
        os.replace(tmp, self.token_file)
        if getattr(self, "_sa_dir", None):
            self._sa_write(new)
        return new

    def serviceaccount_dir(self, namespace="default"):
        """A folder laid out like /var/run/secrets/kubernetes.io/serviceaccount as the kubelet
        projects it: token, ca.crt and namespace are symlinks into ..data, itself a symlink to a
        timestamped folder that is swapped atomically on every rotate_token(). Returns its path."""
        self._sa_dir = os.path.join(self.state_dir, "serviceaccount")
        os.makedirs(self._sa_dir, exist_ok=True)
        self._sa_ns = namespace
        self._sa_write(self.token())
        for name in ("token", "ca.crt", "namespace"):
            link = os.path.join(self._sa_dir, name)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", name), link)
        return self._sa_dir

    def _sa_write(self, token):
        d = self._sa_dir
        ts = "..%s_%s" % (time.strftime("%Y_%m_%d_%H_%M_%S"), os.urandom(4).hex())
        os.makedirs(os.path.join(d, ts))
        with open(os.path.join(d, ts, "token"), "w") as f:
            f.write(token)
        shutil.copyfile(self.ca, os.path.join(d, ts, "ca.crt"))
        with open(os.path.join(d, ts, "namespace"), "w") as f:
            f.write(self._sa_ns)
        old = os.path.realpath(os.path.join(d, "..data")) if os.path.islink(
            os.path.join(d, "..data")) else None
        tmp = os.path.join(d, "..data_tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(ts, tmp)
        os.replace(tmp, os.path.join(d, "..data"))
        if old and os.path.isdir(old):
            shutil.rmtree(old, ignore_errors=True)

    def in_cluster_env(self):
        """Environment variables of an in-cluster pod pointing at this server."""
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.port)}

    # --- API requests

    def ssl_context(self):
        if self._ctx is None:
            self._ctx = ssl.create_default_context(cafile=self.ca)
        return self._ctx

    def request(self, method, path, body=None, content_type="application/json", query=None,
                token=Ellipsis, headers=None, timeout=10.0):
        """One request over a small keep-alive pool (thread-safe; a connection is dropped after
        any error or timeout). body may be a dict/list (sent as JSON) or bytes. token=None sends
        no Authorization header; the default uses the token file."""
        import http.client
        if token is Ellipsis:
            token = self.token()
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        hdrs = {"Accept": "application/json", "User-Agent": "fakeapi-test"}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        for attempt in (0, 1):
            with self._pool_lock:
                conn = self._pool.pop() if self._pool else None
            reused = conn is not None
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                                   context=self.ssl_context(), timeout=timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request(method, path, body=data, headers=hdrs)
                r = conn.getresponse()
                raw = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if reused and attempt == 0:
                    continue  # an idle keep-alive connection the server had closed
                raise
            except BaseException:
                conn.close()  # e.g. a timeout: the answer may still come on this connection
                raise
            if r.will_close:
                conn.close()
            else:
                with self._pool_lock:
                    self._pool.append(conn)
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)

    def get(self, path, **query):
        return self.request("GET", path, query=query)

    def list(self, path, **query):
        return self.request("GET", path, query=query)

    def create(self, path, obj, **query):
        return self.request("POST", path, obj, query=query)

    def update(self, path, obj, **query):
        return self.request("PUT", path, obj, query=query)

    PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                   "strategic": "application/strategic-merge-patch+json",
                   "apply": "application/apply-patch+yaml"}

    def patch(self, path, body, kind="merge", **query):
        return self.request("PATCH", path, body, content_type=self.PATCH_TYPES.get(kind, kind),
                            query=query)

    def delete(self, path, body=None, **query):
        return self.request("DELETE", path, body, query=query)

    def list_all(self, path, limit=2, **query):
        """Follow continue tokens; returns (items, [page responses])."""
        items, pages, cont = [], [], ""
        for _ in range(10000):
            q = dict(query, limit=limit)
            if cont:
                q["continue"] = cont
            r = self.list(path, **q)
            pages.append(r)
            if r.status != 200:
                break
            items += r.body["items"]
            cont = r.body["metadata"].get("continue", "")
            if not cont:
                break
        return items, pages

    def watch(self, path, token=Ellipsis, timeout=10.0, **query):
        """Open a WATCH (watch=1 is added). Returns a Watch; check .status first."""
        if token is Ellipsis:
            token = self.token()
        q = {"watch": "1"}
        q.update(query)
        return Watch(self, path, q, token, timeout)

    # --- admin: faults and inspection

    def admin(self, method, path, body=None, timeout=10.0):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            r = conn.getresponse()
            out = json.loads(r.read() or b"null")
            if r.status != 200:
                raise RuntimeError(f"admin {method} {path}: {r.status} {out}")
            return out
        finally:
            conn.close()

    def state(self):
        return self.admin("GET", "/state")

    def requests(self, since=0):
        return self.admin("GET", f"/requests?since={since}")["items"]

    def clear_requests(self):
        return self.admin("DELETE", "/requests")

    def objects(self, resource=None):
        q = f"?resource={resource}" if resource else ""
        return self.admin("GET", "/objects" + q)["items"]

    def drop_watches(self, clean=False, partial=False):
        return self.admin("POST", "/fault/drop-watches", {"clean": clean, "partial": partial})

    def stall(self, seconds, scope="all"):
        return self.admin("POST", "/fault/stall", {"seconds": seconds, "scope": scope})

    def inject_errors(self, code=500, count=1, prefix=None, method=None, watch=None,
                      retry_after=None, close=False):
        body = {"code": code, "count": count, "prefix": prefix, "method": method, "watch": watch,
                "close": close}
        if retry_after is not None:
            body["retry_after"] = retry_after
        return self.admin("POST", "/fault/errors", body)

    def malformed(self, line=None):
        return self.admin("POST", "/fault/malformed", {"line": line} if line is not None else {})

    def watch_error(self, code=410, reason=None, message=None):
        body = {"code": code}
        if reason:
            body["reason"] = reason
        if message:
            body["message"] = message
        return self.admin("POST", "/fault/watch-error", body)

    def expire_token(self):
        return self.admin("POST", "/fault/token", {"expire": True})

    def expect_token(self, token):
        return self.admin("POST", "/fault/token", {"token": token})

    def reset_token(self):
        return self.admin("POST", "/fault/token", {"reset": True})

    def compact(self, rv=None):
        return self.admin("POST", "/fault/compact", {} if rv is None else {"rv": int(rv)})

    def expire_continue(self):
        return self.admin("POST", "/fault/expire-continue", {})

    def clear_faults(self):
        return self.admin("POST", "/fault/clear", {})

    def set_bookmark_interval(self, seconds):
        return self.admin("POST", "/config", {"bookmark_interval": seconds})

    def configure(self, **kw):
        """Admin /config: bookmark_interval, response_encoding, watch_chunk_size, watch_expired,
        disabled_groups (see fake_apiserver's docstring)."""
        return self.admin("POST", "/config", kw)

    def set_tokens(self, tokens):
        """Accept these tokens too ({user name: token}); the request log's "user" names them."""
        return self.admin("POST", "/tokens", {"tokens": tokens})

    def set_rbac(self, rules=None, service_account=None, users=None):
        """Enforce RBAC on the token file's user (or on `users`): explicit rules, or what the
        stored (Cluster)RoleBindings grant to service_account "ns/name". All None = allow all."""
        body = {"rules": rules, "serviceAccount": service_account}
        if users:
            body["users"] = users
        return self.admin("POST", "/rbac", body)

    # --- kubectl

    def kubectl(self, *args, timeout=60.0, input=None, kubectl="kubectl", kubeconfig=None):
        """Run kubectl against this server (or with another kubeconfig); returns
        CompletedProcess (text stdout/stderr)."""
        env = dict(os.environ, KUBECONFIG=kubeconfig or self.kubeconfig,
                   HOME=os.path.join(self.state_dir, "home"))
        os.makedirs(env["HOME"], exist_ok=True)
        return subprocess.run([kubectl, *args], env=env, input=input, capture_output=True,
                              text=True, timeout=timeout)


# --- object builders for tests (plain dicts; Gateway API v1)

GW_API = "gateway.networking.k8s.io/v1"


def namespace(name, labels=None):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels or {})}}


def gatewayclass(name, controller="serval.dev/gateway"):
    return {"apiVersion": GW_API, "kind": "GatewayClass", "metadata": {"name": name},
            "spec": {"controllerName": controller}}


def gateway(ns, name, gateway_class="serval", listeners=None):
    """listeners: list of dicts; default one HTTP listener "http" on port 80."""
    return {"apiVersion": GW_API, "kind": "Gateway", "metadata": {"name": name, "namespace": ns},
            "spec": {"gatewayClassName": gateway_class,
                     "listeners": listeners or [{"name": "http", "port": 80, "protocol": "HTTP"}]}}


def httproute(ns, name, parent="gw", hostnames=None, backends=(("echo", 8080),), path=None,
              rules=None):
    """One rule to `backends` ((service, port[, weight]) tuples), optionally matching a path
    prefix; or explicit `rules`."""
    if rules is None:
        rule = {"backendRefs": [dict({"name": b[0], "port": b[1]},
                                     **({"weight": b[2]} if len(b) > 2 else {}))
                                for b in backends]}
        if path:
            rule["matches"] = [{"path": {"type": "PathPrefix", "value": path}}]
        rules = [rule]
    spec = {"parentRefs": [{"name": parent}], "rules": rules}
    if hostnames:
        spec["hostnames"] = list(hostnames)
    return {"apiVersion": GW_API, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def service(ns, name, port=8080, target_port=None):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": "http", "port": port,
                                "targetPort": target_port or port}]}}


def endpointslice(ns, svc, addresses, port, name=None, ready=True):
    """An IPv4 EndpointSlice of Service svc (label kubernetes.io/service-name)."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{svc}-1", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addresses]}


_PLURALS = {k.kind: k.plural for k in fake_apiserver.KINDS}


def object_path(obj, with_name=True):
    """The URL path of a built object (collection path when with_name is False)."""
    plural = _PLURALS[obj["kind"]]
    kd = next(k for k in fake_apiserver.KINDS if k.plural == plural)
    version = obj["apiVersion"].rpartition("/")[2]
    m = obj["metadata"]
    return path_for(plural, m.get("namespace") if kd.namespaced else None,
                    m["name"] if with_name else None, version=version)


def apply(api, objs, attempts=5):
    """Create each object, or replace it (spec/data, labels) when it exists, retrying on 409.
    Returns the stored objects. Raises RuntimeError on any other answer."""
    out = []
    for obj in objs:
        r = api.create(object_path(obj, False), obj)
        for _ in range(attempts):
            if r.status != 409:
                break
            cur = api.get(object_path(obj))
            if cur.status != 200:
                r = cur
                break
            new = dict(cur.body)
            new.update({k: v for k, v in obj.items() if k not in ("metadata", "status")})
            new["metadata"] = dict(cur.body["metadata"],
                                   labels=obj["metadata"].get("labels",
                                                              cur.body["metadata"].get("labels")))
            r = api.update(object_path(obj), new)
        if r.status not in (200, 201):
            raise RuntimeError(f"apply {object_path(obj)}: {r}")
        out.append(r.body)
    return out
