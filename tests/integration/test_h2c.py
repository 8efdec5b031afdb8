#!/usr/bin/env python3
"""h2c: HTTP/2 cleartext with prior knowledge, folder mode.

Upstream: a backendRef to a Service port with appProtocol kubernetes.io/h2c is spoken to in
HTTP/2 with prior knowledge (serval-echo --h2c-listen answers 400 to anything else): GET, HEAD,
status codes, request bodies with Content-Length and chunked both ways, a large response, from
HTTP/1.1 and HTTP/2 clients; one upstream connection carries request after request; many
concurrent requests; an "h2c" port that only speaks HTTP/1.1 gives 502; raw-frame servers: a
stream reset gives 502, a GOAWAY ends reuse, a head that HPACK shrank below its decoded size beyond
the receive buffers gives 502 (not a hang); the plain HTTP/1.1 backend (and appProtocol
kubernetes.io/ws) are unaffected.

Frontend: a connection on an HTTP listener that begins with the HTTP/2 preface is served by the
HTTP/2 frontend (curl --http2-prior-knowledge, nghttp, h2load); HTTP/1.1 on the same port is
unaffected; a preface that turns out to be something else is an HTTP/1.1 error (505).
serval-echo --h2c-listen: HTTP/2 with prior knowledge gets the echo JSON with "proto":
"HTTP/2.0", plain HTTP/1.1 gets 400 "Expected h2c request"."""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import (check, finish, free_port, http_request, pattern_bytes,  # noqa: E402
                    raw_request, start_echo, start_gateway, stop, unique_addr, wait_port)

MANIFESTS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: serval}}
spec: {{controllerName: serval.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: demo}}
spec:
  gatewayClassName: serval
  listeners:
  - {{name: http, port: {port}, protocol: HTTP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: app, namespace: demo}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches:
    - {{path: {{type: PathPrefix, value: /h1}}}}
    - {{path: {{type: PathPrefix, value: /echo-body}}}}
    - {{path: {{type: PathPrefix, value: /bytes}}}}
    backendRefs: [{{name: svc, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /up}}}}]
    filters:
    - type: URLRewrite
      urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /}}}}
    backendRefs: [{{name: svc, port: 81}}]
  - matches: [{{path: {{type: PathPrefix, value: /ws}}}}]
    backendRefs: [{{name: svc, port: 82}}]
  - matches: [{{path: {{type: PathPrefix, value: /liar}}}}]
    backendRefs: [{{name: liar, port: 81}}]
  - matches: [{{path: {{type: PathPrefix, value: /bighead}}}}]
    backendRefs: [{{name: bighead, port: 81}}]
  - matches: [{{path: {{type: PathPrefix, value: /rst}}}}]
    backendRefs: [{{name: rst, port: 81}}]
  - matches: [{{path: {{type: PathPrefix, value: /goaway}}}}]
    backendRefs: [{{name: goaway, port: 81}}]
---
apiVersion: v1
kind: Service
metadata: {{name: svc, namespace: demo}}
spec:
  ports:
  - {{name: http, port: 80, targetPort: 8080}}
  - {{name: h2c, port: 81, targetPort: 8081, appProtocol: kubernetes.io/h2c}}
  - {{name: ws, port: 82, targetPort: 8080, appProtocol: kubernetes.io/ws}}
---
apiVersion: v1
kind: Service
metadata: {{name: liar, namespace: demo}}
spec:
  ports:
  - {{name: h2c, port: 81, targetPort: 8081, appProtocol: kubernetes.io/h2c}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: liar-1
  namespace: demo
  labels: {{kubernetes.io/service-name: liar}}
addressType: IPv4
ports: [{{name: h2c, port: {eport}}}]
endpoints:
- addresses: ["{eaddr}"]
  conditions: {{ready: true}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-1
  namespace: demo
  labels: {{kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{{name: http, port: {eport}}}, {{name: h2c, port: {hport}}}, {{name: ws, port: {eport}}}]
endpoints:
- addresses: ["{eaddr}"]
  conditions: {{ready: true}}
"""


RAW_SERVICE = """\
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: demo}}
spec:
  ports:
  - {{name: h2c, port: 81, targetPort: 8081, appProtocol: kubernetes.io/h2c}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: demo
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: h2c, port: {port}}}]
endpoints:
- addresses: ["{addr}"]
  conditions: {{ready: true}}
"""


class RawH2Server:
    """A minimal h2c server speaking raw frames, one request per connection, in one of these
    modes: "bighead" answers a head that is ~4 kB on the wire but ~44 kB decoded (a 4000-byte
    field added to the HPACK dynamic table, then referenced ten more times by a one-byte index);
    "rst" resets the stream instead of answering; "goaway" answers 200 and sends GOAWAY. The
    connection stays open afterwards (the gateway must not wait for its end). .conns counts
    accepted connections."""

    def __init__(self, mode):
        self.mode = mode
        self.conns = 0
        self.addr = unique_addr()
        self.sock = socket.socket()
        self.sock.bind((self.addr, 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(30)
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    @staticmethod
    def frame(ftype, flags, sid, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
            struct.pack(">I", sid) + payload

    def serve(self, c):
        c.settimeout(10)
        buf = b""
        sid = None
        while sid is None:  # the preface, SETTINGS, then the request's HEADERS
            d = c.recv(65536)
            if not d:
                return
            buf += d
            pos = 24 if buf.startswith(b"PRI * HTTP/2.0") else 0
            while len(buf) >= pos + 9:
                ln = int.from_bytes(buf[pos:pos + 3], "big")
                if buf[pos + 3] == 1:
                    sid = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7fffffff
                pos += 9 + ln
        out = self.frame(4, 0, 0, b"") + self.frame(4, 1, 0, b"")  # SETTINGS, its ACK
        block = b"\x88"  # :status 200 (static index 8)
        if self.mode == "bighead":
            block += b"\x40\x05x-big\x7f\xa1\x1e" + b"v" * 4000  # literal, incremental idx
            block += b"\xbe" * 10  # dynamic index 62, ten times
        block += b"\x0f\x0d\x010"  # content-length: 0 (static name 28, not indexed)
        if self.mode == "rst":
            out += self.frame(3, 0, sid, struct.pack(">I", 2))  # RST_STREAM INTERNAL_ERROR
        else:
            out += self.frame(1, 0x5, sid, block)  # HEADERS, END_STREAM | END_HEADERS
        if self.mode == "goaway":
            out += self.frame(7, 0, 0, struct.pack(">II", sid, 0))  # GOAWAY NO_ERROR
        c.sendall(out)
        c.settimeout(60)  # keep the connection open: the gateway must not wait for its end
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass

    def run(self):
        try:
            while True:
                c, _ = self.sock.accept()
                self.conns += 1
                with c:
                    self.serve(c)
        except OSError:
            return

    def close(self):
        self.sock.close()


def metric(gw, name):
    """Sum of a counter over the workers, from the admin /metrics."""
    r = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics")
    total = 0
    for ln in r.body.decode().splitlines():
        if ln.startswith(name + "{") or ln.startswith(name + " "):
            total += int(float(ln.rsplit(" ", 1)[1]))
    return total


def upstream_checks(gw, host, port, raws):
    """Backends with appProtocol kubernetes.io/h2c."""
    base = f"http://{host}:{port}"
    r = http_request(host, port, "GET", "/up/some/path?q=1", headers={"X-One": "1"})
    j = json.loads(r.body) if r is not None and r.body.startswith(b"{") else {}
    check("h2c upstream: HTTP/1.1 client, the backend was spoken to in HTTP/2",
          r is not None and r.status == 200 and j.get("proto") == "HTTP/2.0" and
          j.get("path") == "/some/path?q=1" and j.get("host") == f"{host}:{port}" and
          j.get("method") == "GET" and j.get("headers", {}).get("X-One") == ["1"] and
          j.get("headers", {}).get("X-Forwarded-Proto") == ["http"],
          (r and r.status, j))
    check("h2c upstream: the response reaches the HTTP/1.1 client with its headers",
          r.header_all("content-type") == ["application/json"] and
          r.header_all("x-content-type-options") == ["nosniff"], r.headers)
    rc, st, ver, body, err = curl(f"{base}/up/two")
    j = json.loads(body) if body.startswith(b"{") else {}
    check("h2c upstream: HTTP/2 client (prior knowledge) to the h2c backend",
          rc == 0 and st == 200 and ver == "2" and j.get("proto") == "HTTP/2.0" and
          j.get("path") == "/two", (rc, st, ver, body[:200], err[-300:]))
    r = http_request(host, port, "HEAD", "/up/head")
    check("h2c upstream: HEAD answered without a body",
          r is not None and r.status == 200 and r.body == b"", r and (r.status, r.body[:50]))
    r = http_request(host, port, "GET", "/up/status/418")
    check("h2c upstream: the backend's status passes through (418)",
          r is not None and r.status == 418, r and r.status)
    data = pattern_bytes(300000, 7)
    r = http_request(host, port, "POST", "/up/echo-body", body=data, timeout=20.0)
    check("h2c upstream: a 300 kB body with Content-Length goes up and comes back intact",
          r is not None and r.status == 200 and r.body == data, r and (r.status, len(r.body)))
    pieces = [data[i:i + 7000] for i in range(0, len(data), 7000)]
    r = http_request(host, port, "POST", "/up/echo-body", chunks=pieces, timeout=20.0)
    check("h2c upstream: a chunked request body goes up de-chunked and comes back intact",
          r is not None and r.status == 200 and r.body == data, r and (r.status, len(r.body)))
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        rc, st, ver, body, err = curl(f"{base}/up/echo-body", ["--data-binary", f"@{f.name}"])
    check("h2c upstream: an HTTP/2 client's body both ways through an h2c backend",
          rc == 0 and st == 200 and body == data, (rc, st, len(body), err[-300:]))
    r = http_request(host, port, "GET", "/up/bytes/3000000", timeout=20.0)
    check("h2c upstream: a 3 MB response arrives intact",
          r is not None and r.status == 200 and r.body == pattern_bytes(3000000),
          r and (r.status, len(r.body)))
    r = http_request(host, port, "GET", "/up/bytes/1000000?chunked=1", timeout=20.0)
    check("h2c upstream: a response without content-length reaches an HTTP/1.1 client "
          "chunked and intact",
          r is not None and r.status == 200 and r.body == pattern_bytes(1000000) and
          r.header_all("transfer-encoding") == ["chunked"],
          r and (r.status, len(r.body), r.headers))
    rc, st, ver, body, err = curl(f"{base}/up/bytes/1000000?chunked=1")
    check("h2c upstream: ... and an HTTP/2 client", rc == 0 and st == 200 and
          body == pattern_bytes(1000000), (rc, st, len(body), err[-300:]))
    before_c = metric(gw, "serval_upstream_connects_total")
    before_r = metric(gw, "serval_upstream_reuses_total")
    ok = 0
    for i in range(10):
        r = http_request(host, port, "GET", f"/up/seq{i}")
        ok += r is not None and r.status == 200 and b'"HTTP/2.0"' in r.body
    after_c = metric(gw, "serval_upstream_connects_total")
    after_r = metric(gw, "serval_upstream_reuses_total")
    check("h2c upstream: ten sequential requests reuse one h2c connection",
          ok == 10 and after_c == before_c and after_r - before_r == 10,
          (ok, before_c, after_c, before_r, after_r))
    if shutil.which("h2load"):
        p = subprocess.run(["h2load", "-n", "600", "-c", "3", "-m", "8", f"{base}/up/load"],
                           capture_output=True, timeout=60)
        out = p.stdout.decode()
        check("h2c upstream: 600 requests, 24 at a time, all 2xx",
              p.returncode == 0 and "600 succeeded" in out and "600 2xx" in out, out[-600:])
    r = http_request(host, port, "GET", "/liar/x")
    check("h2c upstream: an h2c port that only speaks HTTP/1.1 -> 502",
          r is not None and r.status == 502, r and r.status)
    try:
        r = http_request(host, port, "GET", "/rst/x", timeout=15.0)
    except OSError as ex:
        r = ex
    check("h2c upstream: a stream reset before the response -> 502",
          getattr(r, "status", None) == 502, r)
    st = []
    retries = metric(gw, "serval_retries_total")
    for i in range(2):
        try:
            st.append(http_request(host, port, "GET", f"/goaway/{i}", timeout=15.0).status)
        except OSError as ex:
            st.append(ex)
    retries = metric(gw, "serval_retries_total") - retries
    check("h2c upstream: after a GOAWAY the next request gets a new connection (not a retry)",
          st == [200, 200] and raws["goaway"].conns == 2 and retries == 0,
          (st, raws["goaway"].conns, retries))
    try:
        r = http_request(host, port, "GET", "/bighead/x", timeout=15.0)
    except OSError as ex:  # timed out: the gateway waited for the upstream
        r = ex
    check("h2c upstream: a response head that decodes larger than its receive buffers -> 502, "
          "not a hang", getattr(r, "status", None) == 502, r)
    r = http_request(host, port, "GET", "/ws/x")
    j = json.loads(r.body) if r is not None and r.body.startswith(b"{") else {}
    check("h2c upstream: appProtocol kubernetes.io/ws stays HTTP/1.1",
          r is not None and r.status == 200 and j.get("proto") == "HTTP/1.1", r and r.status)
    r = http_request(host, port, "GET", "/h1/after-h2c")
    j = json.loads(r.body) if r is not None and r.body.startswith(b"{") else {}
    check("h2c upstream: the HTTP/1.1 backend is unaffected",
          r is not None and r.status == 200 and j.get("proto") == "HTTP/1.1", r and r.status)


def curl(url, extra=(), timeout=30, out=None):
    """curl --http2-prior-knowledge <url> -> (rc, status, http_version, body bytes, stderr)."""
    with tempfile.TemporaryDirectory(prefix="sv-h2c-") as d:
        bf = out or os.path.join(d, "b")
        argv = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", str(timeout - 5),
                "-w", "%{http_code} %{http_version}", "-o", bf, *extra, url]
        p = subprocess.run(argv, capture_output=True, timeout=timeout)
        body = b""
        if os.path.exists(bf):
            with open(bf, "rb") as f:
                body = f.read()
        parts = p.stdout.decode().split()
        st = int(parts[0]) if parts and parts[0].isdigit() else 0
        ver = parts[1] if len(parts) > 1 else ""
        return p.returncode, st, ver, body, p.stderr.decode(errors="replace")


def echo_checks():
    """serval-echo's h2c port on its own."""
    e = start_echo(pod="pod-h2c", ns="ns-h2c", args=["--threads", "1", "--h2c-listen",
                                                      f"{unique_addr()}:0"])
    try:
        import re
        from svtest import read_log
        m = re.search(r"h2c listening on (\S+):(\d+)", read_log(e))
        check("h2c echo: announces its h2c port", m is not None, read_log(e)[-400:])
        if not m:
            return
        h, p = m.group(1), int(m.group(2))
        rc, st, ver, body, err = curl(f"http://{h}:{p}/some/path?q=1", ["-H", "X-One: 1"])
        j = json.loads(body) if body.startswith(b"{") else {}
        check("h2c echo: prior knowledge request answered over HTTP/2 with the echo JSON",
              rc == 0 and st == 200 and ver == "2" and j.get("proto") == "HTTP/2.0" and
              j.get("path") == "/some/path?q=1" and j.get("host") == f"{h}:{p}" and
              j.get("method") == "GET" and j.get("pod") == "pod-h2c" and
              j.get("namespace") == "ns-h2c" and j.get("headers", {}).get("X-One") == ["1"],
              (rc, st, ver, body[:300], err[-300:]))
        r = http_request(h, p, "GET", "/x")
        check("h2c echo: plain HTTP/1.1 answered 400 'Expected h2c request'",
              r is not None and r.status == 400 and b"Expected h2c request" in r.body,
              r and (r.status, r.body[:100]))
        data = pattern_bytes(200000)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            rc, st, ver, body, err = curl(f"http://{h}:{p}/echo-body",
                                          ["--data-binary", f"@{f.name}"])
        check("h2c echo: /echo-body returns a 200 kB body intact",
              rc == 0 and st == 200 and body == data, (rc, st, len(body), err[-300:]))
        rc, st, ver, body, err = curl(f"http://{h}:{p}/bytes/1000000")
        check("h2c echo: /bytes/1000000 generated intact",
              rc == 0 and st == 200 and body == pattern_bytes(1000000),
              (rc, st, len(body), err[-300:]))
    finally:
        stop(e)


def main():
    if not shutil.which("curl"):
        print("skip - h2c: curl missing")
        return
    echo_checks()
    d = tempfile.mkdtemp(prefix="sv-h2c-")
    gw = e = None
    raws = {}
    try:
        for mode in ("bighead", "rst", "goaway"):
            raws[mode] = RawH2Server(mode)
        eaddr = unique_addr()
        hport = free_port(eaddr)
        e = start_echo(addr=eaddr, pod="pod-h1",
                       args=["--threads", "1", "--h2c-listen", f"{eaddr}:{hport}"])
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        port = free_port(host)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(MANIFESTS.format(port=port, eport=e.port, eaddr=e.addr, hport=hport))
            for mode, srv in raws.items():
                f.write(RAW_SERVICE.format(name=mode, addr=srv.addr, port=srv.port))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1",
                            "--upstream-timeout", "60s"])
        check("h2c: HTTP port listens", wait_port(host, port, 10.0))
        base = f"http://{host}:{port}"

        # prior knowledge to an HTTP/1.1 backend
        rc, st, ver, body, err = curl(f"{base}/h1/x?y=1", ["-H", "X-Test: one"])
        j = json.loads(body) if body.startswith(b"{") else {}
        check("h2c: prior-knowledge GET is served over HTTP/2 (200)",
              rc == 0 and st == 200 and ver == "2", (rc, st, ver, err[-400:]))
        check("h2c: the HTTP/1.1 backend saw path, Host from :authority, X-Forwarded-Proto http",
              j.get("path") == "/h1/x?y=1" and j.get("host") == f"{host}:{port}" and
              j.get("proto") == "HTTP/1.1" and
              j.get("headers", {}).get("X-Forwarded-Proto") == ["http"] and
              j.get("headers", {}).get("X-Test") == ["one"], j)
        rc, st, ver, body, err = curl(f"{base}/nope")
        check("h2c: no matching rule -> 404 over HTTP/2", rc == 0 and st == 404 and ver == "2",
              (rc, st, ver, err[-300:]))
        data = pattern_bytes(300000)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            rc, st, ver, body, err = curl(f"{base}/echo-body",
                                          ["--data-binary", f"@{f.name}"])
        check("h2c: a 300 kB POST body goes up and comes back intact",
              rc == 0 and st == 200 and body == data, (rc, st, len(body), err[-300:]))
        rc, st, ver, body, err = curl(f"{base}/bytes/2000000")
        check("h2c: a 2 MB response arrives intact", rc == 0 and st == 200 and
              body == pattern_bytes(2000000), (rc, st, len(body), err[-300:]))

        # HTTP/1.1 on the same port is unaffected
        r = http_request(host, port, "GET", "/h1/plain")
        j = json.loads(r.body) if r is not None and r.body.startswith(b"{") else {}
        check("h2c: HTTP/1.1 on the same listener still works",
              r is not None and r.status == 200 and j.get("path") == "/h1/plain",
              r and r.status)
        # a preface that is not one: HTTP/1.1's answer
        resp = raw_request(host, port, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", timeout=5.0)
        check("h2c: a broken preface is answered like any bad HTTP/1.1 request (505, closed)",
              resp.startswith(b"HTTP/1.1 505") and b"Connection: close" in resp, resp[:100])

        # several streams on one connection
        if shutil.which("nghttp"):
            p = subprocess.run(["nghttp", "-n", "-s", f"{base}/h1/a", f"{base}/h1/b",
                                f"{base}/bytes/100000"], capture_output=True, timeout=30)
            out = p.stdout.decode()
            check("h2c: three concurrent streams on one connection (nghttp)",
                  p.returncode == 0 and out.count(" 200 ") == 3, out[-600:])
        if shutil.which("h2load"):
            p = subprocess.run(["h2load", "-n", "400", "-c", "2", "-m", "8", f"{base}/h1/l"],
                               capture_output=True, timeout=60)
            out = p.stdout.decode()
            check("h2c: h2load 400 requests on 2 connections, all 2xx",
                  p.returncode == 0 and "400 succeeded" in out and "400 2xx" in out,
                  out[-600:])
        upstream_checks(gw, host, port, raws)
        r = http_request(host, port, "GET", "/h1/after")
        check("h2c: worker healthy afterwards", r is not None and r.status == 200,
              r and r.status)
    finally:
        if gw:
            stop(gw)
        if e:
            stop(e)
        for srv in raws.values():
            srv.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        finish()
