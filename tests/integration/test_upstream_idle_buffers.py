#!/usr/bin/env python3
"""Idle pooled upstream connections that their backend keeps talking to do not hold receive
buffers (real binary, folder mode, one worker with 16 receive buffers): ten h2c connections
(appProtocol kubernetes.io/h2c, raw-frame server) answer one request each, go idle in the
keep-alive pool, then get six PINGs each. The buffers those PINGs came in were kept as spares of
the idle connection (two each), which dried the ring: an unrelated HTTP/1.1 request then got no
answer. Now it is answered, and an idle connection is still reused afterwards."""
import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import (check, finish, free_port, http_request, start_echo,  # noqa: E402
                    start_gateway, stop, unique_addr, wait_port)


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


class Pinger:
    """h2c server: answers the first request of a connection after 0.3 s (so concurrent
    requests get connections of their own), then PINGs the idle connection six times and
    answers later requests at once. .conns counts accepted connections."""

    def __init__(self):
        self.addr = unique_addr()
        self.sock = socket.socket()
        self.sock.bind((self.addr, 0))
        self.sock.listen(64)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        threading.Thread(target=self.run, daemon=True).start()

    @staticmethod
    def next_request(c, buf):
        """Read frames until a HEADERS frame: (its stream id, the bytes after it), or None."""
        while True:
            pos = 24 if buf.startswith(b"PRI * HTTP/2.0") else 0
            while len(buf) >= pos + 9:
                ln = int.from_bytes(buf[pos:pos + 3], "big")
                if len(buf) < pos + 9 + ln:
                    break
                if buf[pos + 3] == 1:
                    sid = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7fffffff
                    return sid, buf[pos + 9 + ln:]
                pos += 9 + ln
            buf = buf[pos:]
            d = c.recv(65536)
            if not d:
                return None
            buf += d

    def serve(self, c):
        c.settimeout(10)
        c.sendall(frame(4, 0, 0, b""))  # SETTINGS
        got = self.next_request(c, b"")
        if got is None:
            return
        time.sleep(0.3)
        # SETTINGS ACK; HEADERS :status 200, content-length: 0, END_STREAM | END_HEADERS
        c.sendall(frame(4, 1, 0, b"") + frame(1, 0x5, got[0], b"\x88\x0f\x0d\x010"))
        time.sleep(0.3)
        for i in range(6):
            c.sendall(frame(6, 0, 0, b"%08d" % i))  # PING
            time.sleep(0.05)
        c.settimeout(30)
        got = self.next_request(c, got[1])  # a reuse: answered at once
        while got is not None:
            c.sendall(frame(1, 0x5, got[0], b"\x88\x0f\x0d\x010"))
            got = self.next_request(c, got[1])

    def serve_close(self, c):
        with c:
            try:
                self.serve(c)
            except OSError:
                pass

    def run(self):
        try:
            while True:
                c, _ = self.sock.accept()
                self.conns += 1
                threading.Thread(target=self.serve_close, args=(c,), daemon=True).start()
        except OSError:
            return

    def close(self):
        self.sock.close()


HEAD = """apiVersion: gateway.networking.k8s.io/v1
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
metadata: {{name: r, namespace: demo}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /h2}}}}]
    backendRefs: [{{name: h2, port: 81}}]
  - backendRefs: [{{name: svc, port: 80}}]
---
apiVersion: v1
kind: Service
metadata: {{name: svc, namespace: demo}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc-1, namespace: demo, labels: {{kubernetes.io/service-name: svc}}}}
addressType: IPv4
ports: [{{name: http, port: {eport}}}]
endpoints:
- addresses: ["{eaddr}"]
  conditions: {{ready: true}}
---
apiVersion: v1
kind: Service
metadata: {{name: h2, namespace: demo}}
spec:
  ports: [{{name: h2c, port: 81, targetPort: 8081, appProtocol: kubernetes.io/h2c}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: h2-1, namespace: demo, labels: {{kubernetes.io/service-name: h2}}}}
addressType: IPv4
ports: [{{name: h2c, port: {hport}}}]
endpoints:
- addresses: ["{haddr}"]
  conditions: {{ready: true}}
"""

def metric(gw, name):
    text = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()
    return sum(int(m.group(1)) for m in
               re.finditer(r"^serval_" + name + r"\{[^}]*\} (\d+)", text, re.M))


def main():
    d = tempfile.mkdtemp(prefix="sv-idle-bufs-")
    gw = e = pg = None
    try:
        e = start_echo(addr=unique_addr(), pod="idle")
        pg = Pinger()
        host = unique_addr()
        port = free_port(host)
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(HEAD.format(port=port, eport=e.port, eaddr=e.addr, hport=pg.port,
                                haddr=pg.addr))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1",
                            "--recv-buffers", "16"])
        check("idle buffers: listener up", wait_port(host, port, 10.0))
        res = []

        def one(i):
            try:
                res.append(http_request(host, port, "GET", f"/h2/{i}", timeout=10.0).status)
            except OSError as ex:
                res.append(ex)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check("idle buffers: ten concurrent h2c requests on ten connections -> 200",
              res == [200] * 10 and pg.conns == 10, (res, pg.conns))
        time.sleep(1.0)  # the server PINGs every idle connection six times
        try:
            st = http_request(host, port, "GET", "/other", timeout=5.0).status
        except OSError as ex:  # timed out: the ring was dry
            st = ex
        check("idle buffers: PINGed idle h2c connections leave the ring usable (another "
              "request answered)", st == 200, st)
        reuses = metric(gw, "upstream_reuses_total")
        try:
            st = http_request(host, port, "GET", "/h2/again", timeout=5.0).status
        except OSError as ex:
            st = ex
        check("idle buffers: a PINGed idle h2c connection is reused",
              st == 200 and metric(gw, "upstream_reuses_total") == reuses + 1 and
              pg.conns == 10, (st, pg.conns))
    finally:
        if gw is not None:
            stop(gw)
        if e is not None:
            stop(e)
        if pg is not None:
            pg.close()
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
