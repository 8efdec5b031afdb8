#!/usr/bin/env python3
"""h2c: HTTP/2 cleartext with prior knowledge, folder mode.

Frontend: a connection on an HTTP listener that begins with the HTTP/2 preface is served by the
HTTP/2 frontend (curl --http2-prior-knowledge, nghttp, h2load); HTTP/1.1 on the same port is
unaffected; a preface that turns out to be something else is an HTTP/1.1 error (505).
serval-echo --h2c-listen: HTTP/2 with prior knowledge gets the echo JSON with "proto":
"HTTP/2.0", plain HTTP/1.1 gets 400 "Expected h2c request"."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

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
---
apiVersion: v1
kind: Service
metadata: {{name: svc, namespace: demo}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-1
  namespace: demo
  labels: {{kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{{name: http, port: {eport}}}]
endpoints:
- addresses: ["{eaddr}"]
  conditions: {{ready: true}}
"""


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
    try:
        e = start_echo(pod="pod-h1", args=["--threads", "1"])
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        port = free_port(host)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(MANIFESTS.format(port=port, eport=e.port, eaddr=e.addr))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1"])
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
        r = http_request(host, port, "GET", "/h1/after")
        check("h2c: worker healthy afterwards", r is not None and r.status == 200,
              r and r.status)
    finally:
        if gw:
            stop(gw)
        if e:
            stop(e)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        finish()
