#!/usr/bin/env python3
"""HTTP/2 over TLS on the frontend (ALPN h2), folder mode: curl --http2 GET and POST (with
content-length and chunked bodies) through the proxy, response status and headers preserved,
421 when the Host (:authority) selects another listener than the SNI, 404, a 1 MiB response
intact, several concurrent streams on one connection (nghttp / h2load), HTTP/1.1 still chosen
by clients that do not offer h2, and a client that resets streams or drops the connection in the
middle of a response leaves the worker healthy."""
import json
import re
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_mirror_body import Recorder  # noqa: E402  (the recording mirror backend)
from manifests import (backend, docs, gateway, gateway_class, http_route,  # noqa: E402
                       gen_certs, sni_listeners, sni_secrets)
from svtest import (check, finish, free_port, http_request, pattern_bytes,  # noqa: E402
                    start_echo, start_gateway, stop, unique_addr, wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROUTE_RULES = """\
  - matches:
    - {path: {type: PathPrefix, value: /x}}
    - {path: {type: PathPrefix, value: /m}}
    - {path: {type: PathPrefix, value: /echo}}
    - {path: {type: PathPrefix, value: /echo-body}}
    - {path: {type: PathPrefix, value: /bytes}}
    - {path: {type: PathPrefix, value: /load}}
    - {path: {type: PathPrefix, value: /after}}
    - {path: {type: PathPrefix, value: /h1}}
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: X-Resp-Added, value: "yes"}]}
    backendRefs: [{name: svc, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /mirrored}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: rec, port: 80}}
    backendRefs: [{name: svc, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /redir}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {hostname: elsewhere.example.com, statusCode: 302}
"""


def manifests(port, e, rec):
    """The SNI listeners on <port>; the route's backends: the echo <e> (svc) and the recording
    mirror <rec> (rec)."""
    return docs(gateway_class(), gateway(listeners=sni_listeners(port)), http_route(ROUTE_RULES),
                backend("rec", rec.srv.addr, rec.srv.port), backend("svc", e.addr, e.port))


def curl2(host, port, name, path, extra=(), timeout=40):
    """curl --http2 https://<name>:<port><path> -> (rc, status, headers dict, body, http_version)."""
    with tempfile.TemporaryDirectory(prefix="sv-h2c-") as d:
        hf = os.path.join(d, "h")
        argv = ["curl", "-sS", "-k", "--http2", "--max-time", str(timeout - 5), "-D", hf,
                "-w", "%{http_version}", "-o", os.path.join(d, "b"),
                "--resolve", f"{name}:{port}:{host}", *extra, f"https://{name}:{port}{path}"]
        p = subprocess.run(argv, capture_output=True, timeout=timeout)
        body = b""
        if os.path.exists(os.path.join(d, "b")):
            with open(os.path.join(d, "b"), "rb") as f:
                body = f.read()
        status, headers = 0, {}
        if os.path.exists(hf):
            with open(hf, "rb") as f:
                lines = f.read().decode("latin-1").split("\r\n")
            if lines and lines[0].startswith("HTTP/"):
                status = int(lines[0].split(" ")[1])
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                if k:
                    headers.setdefault(k.strip().lower(), []).append(v.strip())
        return p.returncode, status, headers, body, p.stdout.decode().strip(), \
            p.stderr.decode(errors="replace")


def main():
    if not shutil.which("openssl") or not shutil.which("curl"):
        print("skip - h2 tls: openssl or curl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-h2-")
    gw = None
    e = None
    rec = None
    try:
        certs = gen_certs(d)
        e = start_echo(pod="pod-h2")
        rec = Recorder()
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        port = free_port(host)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(manifests(port, e, rec))
        with open(os.path.join(conf, "secrets.yaml"), "w") as f:
            f.write(sni_secrets(certs))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1"])
        check("h2 tls: HTTPS port listens", wait_port(host, port, 10.0))

        # GET over h2, routed through the proxy; headers and status preserved.
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", "/x?y=1",
                                           ["-H", "X-Test: one"])
        j = json.loads(body) if body.startswith(b"{") else {}
        check("h2 tls: GET negotiates HTTP/2 and gets 200", rc == 0 and ver == "2" and st == 200,
              (rc, ver, st, err[-600:]))
        check("h2 tls: backend saw path, Host from :authority, X-Forwarded-Proto https",
              j.get("path") == "/x?y=1" and j.get("host") == f"a.example.com:{port}" and
              j.get("headers", {}).get("X-Forwarded-Proto") == ["https"] and
              j.get("headers", {}).get("X-Test") == ["one"], j)
        check("h2 tls: response headers preserved (content-type, filter-added header)",
              hd.get("content-type") == ["application/json"] and
              hd.get("x-resp-added") == ["yes"], hd)
        check("h2 tls: no connection-specific headers in the h2 response",
              "connection" not in hd and "transfer-encoding" not in hd and
              "keep-alive" not in hd, hd)

        # 421: SNI a.example.com, Host b.example.com selects the wildcard listener.
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", "/m",
                                           ["-H", "Host: b.example.com"])
        check("h2 tls: misdirected Host vs SNI -> 421", rc == 0 and ver == "2" and st == 421,
              (rc, ver, st, err[-400:]))
        rc, st, hd, body, ver, err = curl2(host, port, "b.example.com", "/m")
        check("h2 tls: the wildcard listener answers for its own SNI", rc == 0 and st == 200,
              (rc, st, err[-400:]))

        # 404 (no rule for the path) and a redirect, both answered by the gateway itself.
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", "/nope")
        check("h2 tls: no matching rule -> 404 over h2", rc == 0 and ver == "2" and st == 404,
              (rc, ver, st, err[-400:]))
        rc, st, hd, body, ver, err = curl2(host, port, "b.example.com", "/redir/x")
        check("h2 tls: RequestRedirect answered over h2 (302 + Location)",
              rc == 0 and st == 302 and
              hd.get("location", [""])[0].startswith("https://elsewhere.example.com"),
              (rc, st, hd, err[-400:]))

        # POST with a body (content-length) and a chunked-upstream body (no content-length).
        blob = os.urandom(300 * 1024 + 5)
        bf = os.path.join(d, "blob")
        with open(bf, "wb") as f:
            f.write(blob)
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", "/echo-body",
                                           ["--data-binary", "@" + bf, "-H",
                                            "Content-Type: application/octet-stream"])
        check("h2 tls: POST 300 KiB body (content-length) echoed back intact",
              rc == 0 and st == 200 and body == blob, (rc, st, len(body), err[-600:]))
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", "/echo-body",
                                           ["-T", bf, "-X", "POST", "-H",
                                            "Content-Length:"])
        check("h2 tls: POST body without content-length (chunked upstream) intact",
              rc == 0 and st == 200 and body == blob, (rc, st, len(body), err[-600:]))
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", "/echo",
                                           ["-X", "POST", "--data", "k=v"])
        j = json.loads(body) if body.startswith(b"{") else {}
        check("h2 tls: small POST seen by the backend with its method",
              st == 200 and j.get("method") == "POST", (st, body[:200]))

        # RequestMirror: the copy of an h2 POST carries the body too (chunked upstream framing).
        small = os.urandom(70000)
        sf = os.path.join(d, "small")
        with open(sf, "wb") as f:
            f.write(small)
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", "/mirrored/p",
                                           ["-T", sf, "-X", "POST", "-H", "Content-Length:"])
        got = rec.wait(1, timeout=10)
        check("h2 tls: mirrored h2 POST: client answered, mirror got method, path and body",
              rc == 0 and st == 200 and got is not None and got[0][0] == "POST" and
              got[0][1] == "/mirrored/p" and got[0][3] == small,
              (rc, st, got and [(g[0], g[1], len(g[3])) for g in got]))

        # Large response intact.
        n = 1024 * 1024 + 7
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", f"/bytes/{n}")
        check("h2 tls: 1 MiB response intact", rc == 0 and st == 200 and
              body == pattern_bytes(n), (rc, st, len(body), err[-600:]))

        # Many concurrent streams on one connection.
        if shutil.which("h2load"):
            p = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "10",
                                f"https://{host}:{port}/load"], capture_output=True,
                               timeout=60)
            out = p.stdout.decode(errors="replace")
            check("h2 tls: h2load 200 requests, 2 connections x 10 streams, all 2xx",
                  p.returncode == 0 and "200 succeeded, 0 failed, 0 errored" in out and
                  "status codes: 200 2xx" in out, out[-900:])
        if shutil.which("nghttp"):
            urls = [f"https://{host}:{port}/bytes/{100000 + i}" for i in range(8)]
            p = subprocess.run(["nghttp", "-n", "-s", *urls], capture_output=True, timeout=60)
            out = p.stdout.decode(errors="replace")
            check("h2 tls: nghttp 8 concurrent streams on one connection",
                  p.returncode == 0 and out.count("/bytes/") >= 8, out[-900:])

        # A client offering only http/1.1 still gets HTTP/1.1.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection((host, port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="a.example.com") as t:
                proto = t.selected_alpn_protocol()
                t.sendall(b"GET /h1 HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    b = t.recv(65536)
                    if not b:
                        break
                    data += b
        check("h2 tls: ALPN http/1.1 client still served HTTP/1.1",
              proto == "http/1.1" and data.startswith(b"HTTP/1.1 200"), (proto, data[:100]))

        # Client resets / disconnects mid-response: the worker stays healthy.
        for i in range(3):
            p = subprocess.Popen(["curl", "-sS", "-k", "--http2", "--max-time", "20",
                                  "--limit-rate", "100K", "--resolve",
                                  f"a.example.com:{port}:{host}",
                                  f"https://a.example.com:{port}/bytes/{8 * 1024 * 1024}",
                                  "-o", "/dev/null"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            try:
                p.wait(timeout=0.5 + 0.2 * i)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if shutil.which("h2load"):
            # streams opened and dropped at once (h2load with a tiny timeout per connection)
            subprocess.run(["h2load", "-n", "50", "-c", "5", "-m", "10", "-T", "0.01",
                            f"https://{host}:{port}/bytes/500000"], capture_output=True,
                           timeout=60)
        rc, st, hd, body, ver, err = curl2(host, port, "a.example.com", "/after")
        check("h2 tls: after dropped/reset clients the next request is answered",
              rc == 0 and st == 200 and ver == "2", (rc, st, err[-400:]))
        text = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()

        def metric(name):
            return sum(int(m.group(1)) for m in
                       re.finditer(r"^serval_" + name + r"\{[^}]*\} (\d+)", text, re.M))
        check("h2 tls: /metrics counts HTTP/2 connections and streams",
              metric("h2_connections_total") >= 10 and metric("h2_streams_total") >= 200,
              (metric("h2_connections_total"), metric("h2_streams_total")))
        check("h2 tls: gateway still running", gw.poll() is None)
    finally:
        if gw:
            stop(gw)
        if e:
            stop(e)
        if rec:
            rec.srv.close()
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
