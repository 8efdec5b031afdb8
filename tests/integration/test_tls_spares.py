#!/usr/bin/env python3
"""Idle TLS keep-alive connections give their handshake's receive buffers back to the ring: one
worker with the smallest ring (--recv-buffers 16) and 10 HTTPS keep-alive connections that each
made a full handshake and a request and then sit idle; new connections must still be served at
once (no receive waits for buffers) and the idle ones must still work afterwards. Before, each
kept up to 4 spare buffers (ClientHello, client Finished, ...), and 10 idle connections ran a
16-buffer ring dry."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import (backend, docs, gateway, gateway_class, http_route,  # noqa: E402
                       https_listener, tls_secret)
from svtest import (check, finish, free_port, http_request, start_echo,  # noqa: E402
                    start_gateway, stop, unique_addr, wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IDLE = 10

def manifests(port, eport, eaddr):
    """One HTTPS listener "tls" on <port>, one route to Service svc at <eaddr>:<eport>."""
    return docs(gateway_class(), gateway(listeners=https_listener(port, "cert", name="tls")),
                http_route("[{backendRefs: [{name: svc, port: 80}]}]"), backend("svc", eaddr, eport))


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def get(s, path, timeout=3.0):
    """One keep-alive GET on <s>; returns the status (0 on timeout/close) once the body (with
    Content-Length) is complete."""
    s.settimeout(timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    buf = b""
    try:
        for _ in range(1000):
            if b"\r\n\r\n" in buf:
                head, _, body = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    return int(head.split(b" ", 2)[1])
            d = s.recv(65536)
            if not d:
                return 0
            buf += d
    except (socket.timeout, ssl.SSLError, OSError):
        return 0
    return 0


def waits(gw):
    text = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics", timeout=3.0).body.decode()
    return sum(int(m.group(1)) for m in
               re.finditer(r"^serval_recv_buffer_waits_total\{[^}]*\} (\d+)", text, re.M))


def main():
    if not shutil.which("openssl"):
        print("skip - tls spares: openssl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-tlsspares-")
    gw = None
    idle = []
    try:
        certs = os.path.join(d, "certs")
        subprocess.run([os.path.join(ROOT, "tests/tls/gen-certs.sh"), certs], check=True,
                       timeout=60, stdout=subprocess.DEVNULL)
        e = start_echo(pod="pod-sp")
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        port = free_port(host)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(manifests(port, e.port, e.addr))
        with open(os.path.join(conf, "secrets.yaml"), "w") as f:
            f.write(tls_secret("cert", certs, "ec_def"))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1",
                            "--recv-buffers", "16"])
        check("tls spares: HTTPS port listens", wait_port(host, port, 10.0))
        c = ctx()
        codes = []
        for i in range(IDLE):
            try:
                s = c.wrap_socket(socket.create_connection((host, port), timeout=3))
            except (OSError, ssl.SSLError) as ex:
                codes.append(repr(ex))
                break
            idle.append(s)
            codes.append(get(s, f"/idle{i}"))
        check(f"tls spares: {IDLE} keep-alive connections answered", codes == [200] * IDLE, codes)
        time.sleep(0.2)
        fresh = []
        for i in range(3):
            t0 = time.time()
            try:
                with c.wrap_socket(socket.create_connection((host, port), timeout=3)) as s:
                    fresh.append((get(s, f"/fresh{i}"), round(time.time() - t0, 2)))
            except (OSError, ssl.SSLError) as ex:
                fresh.append((0, repr(ex)))
        check(f"tls spares: new connections served beside {IDLE} idle ones (16 buffers)",
              [f[0] for f in fresh] == [200] * 3, fresh)
        again = [get(s, f"/again{i}") for i, s in enumerate(idle)]
        check("tls spares: the idle connections still work", again == [200] * IDLE, again)
        check("tls spares: no receive waited for a buffer", waits(gw) == 0, waits(gw))
        for s in idle:
            s.close()
        idle = []
        rc = stop(gw)
        gw = None
        check("tls spares: gateway exits cleanly", rc == 0)
    finally:
        for s in idle:
            s.close()
        if gw is not None:
            stop(gw)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
