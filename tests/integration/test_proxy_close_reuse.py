#!/usr/bin/env python3
"""Clients that end their connection after one request (HTTP/1.0 with or without Host, HTTP/1.1
with "Connection: close"; over HTTP and over HTTPS, as `openssl s_time -new -www` does) still
leave the upstream connection in the pool: the backend, which answers like nginx (400 and close
for an empty Host), sees one or two connections for all requests, the gateway's
upstream_reuses_total counts the reuses, and every client gets its whole answer with
"Connection: close", then (HTTPS) close_notify, then the end of the connection."""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import (backend, docs, gateway, gateway_class, http_listener,  # noqa: E402
                       http_route, https_listener, tls_secret)
from svtest import (check, finish, free_port, http_request, start_gateway, stop,  # noqa: E402
                    unique_addr, wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def manifests(port, hport, eport, eaddr):
    """An HTTPS listener "tls" on <port> and an HTTP one "plain" on <hport>, one route to
    Service svc at <eaddr>:<eport>."""
    listeners = https_listener(port, "cert", name="tls") + http_listener(hport, name="plain")
    return docs(gateway_class(), gateway(listeners=listeners),
                http_route("[{backendRefs: [{name: svc, port: 80}]}]"), backend("svc", eaddr, eport))

BODY = b"ok from the backend\n"


class Backend:
    """A keep-alive HTTP/1.1 backend like nginx's `return 200`: counts connections and
    requests, answers a request with an empty Host with 400 and closes."""

    def __init__(self, addr):
        self.sock = socket.socket()
        self.sock.bind((addr, 0))
        self.sock.listen(64)
        self.addr, self.port = self.sock.getsockname()
        self.lock = threading.Lock()
        self.conns = self.requests = self.bad_host = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        buf = b""
        with c:
            for _ in range(10000):
                while b"\r\n\r\n" not in buf:
                    try:
                        d = c.recv(65536)
                    except OSError:
                        return
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                hosts = [ln.split(b":", 1)[1].strip() for ln in lines[1:]
                         if ln.lower().startswith(b"host:")]
                with self.lock:
                    self.requests += 1
                    if hosts and not hosts[0]:
                        self.bad_host += 1
                if hosts and not hosts[0]:
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n"
                              b"Connection: close\r\n\r\nbad\n")
                    return
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                          b"Connection: keep-alive\r\n\r\n" % len(BODY) + BODY)

    def stats(self):
        with self.lock:
            return self.conns, self.requests, self.bad_host


def one_shot(host, port, req, tls_ctx=None):
    """Send <req> on a new connection and read until the server closes; returns the bytes
    (None when the server did not close within the timeout)."""
    s = socket.create_connection((host, port), timeout=10)
    try:
        if tls_ctx:
            s = tls_ctx.wrap_socket(s, suppress_ragged_eofs=False)  # EOF without close_notify fails
        s.sendall(req)
        out = b""
        for _ in range(1000):
            try:
                d = s.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                return None
            except socket.timeout:
                return None
            if not d:
                return out
            out += d
        return None
    finally:
        s.close()


def complete_close(data):
    """The answer is a whole 200 with our body, announces the close, and nothing follows."""
    if not data or b"\r\n\r\n" not in data:
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    hdrs = {ln.split(b":", 1)[0].strip().lower(): ln.split(b":", 1)[1].strip()
            for ln in lines[1:] if b":" in ln}
    return (lines[0].startswith(b"HTTP/1.1 200") and hdrs.get(b"connection", b"").lower() ==
            b"close" and hdrs.get(b"content-length") == str(len(BODY)).encode() and body == BODY)


def metric(gw, name):
    text = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics", timeout=3.0).body.decode()
    total = 0
    for ln in text.splitlines():
        if ln.startswith("serval_" + name + "{") or ln.startswith("serval_" + name + " "):
            total += float(ln.rsplit(" ", 1)[1])
    return total


REQUESTS = (
    ("HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n"),
    ("HTTP/1.0 with Host", b"GET /h HTTP/1.0\r\nHost: a.example\r\n\r\n"),
    ("HTTP/1.1 Connection: close", b"GET /c HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n"),
)
ROUNDS = 4


def main():
    if not shutil.which("openssl"):
        print("skip - close reuse: openssl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-closereuse-")
    gw = None
    try:
        certs = os.path.join(d, "certs")
        subprocess.run([os.path.join(ROOT, "tests/tls/gen-certs.sh"), certs], check=True,
                       timeout=60, stdout=subprocess.DEVNULL)
        be = Backend(unique_addr())
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        port, hport = free_port(host), free_port(host)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(manifests(port, hport, be.port, be.addr))
        with open(os.path.join(conf, "secrets.yaml"), "w") as f:
            f.write(tls_secret("cert", certs, "ec_def"))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1"])
        check("close reuse: HTTP and HTTPS ports listen",
              wait_port(host, port, 10.0) and wait_port(host, hport, 10.0))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        n = 0
        for scheme, p, tctx in (("http", hport, None), ("https", port, ctx)):
            for what, req in REQUESTS:
                answers = [one_shot(host, p, req, tctx) for _ in range(ROUNDS)]
                n += ROUNDS
                bad = [a for a in answers if not complete_close(a)]
                check(f"close reuse: {scheme} {what}: {ROUNDS} whole answers, Connection: close,"
                      " then the connection ends", not bad, bad[:1])
        conns, reqs, bad_host = be.stats()
        check("close reuse: the backend answered every request", reqs == n, (reqs, n))
        check("close reuse: no empty Host reached the backend", bad_host == 0, bad_host)
        check(f"close reuse: {n} one-request clients used at most 2 upstream connections",
              1 <= conns <= 2, conns)
        connects = metric(gw, "upstream_connects_total")
        reuses = metric(gw, "upstream_reuses_total")
        check("close reuse: upstream_reuses_total counts the pooled connection's reuses",
              reuses >= n - 2 and connects + reuses == n, (connects, reuses, n))
        notify = metric(gw, "tls_close_notify_sent_total")
        check("close reuse: one close_notify per HTTPS answer", notify == n / 2, (notify, n / 2))
        rc = stop(gw)
        gw = None
        check("close reuse: gateway exits cleanly", rc == 0)
    finally:
        if gw is not None:
            stop(gw)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
