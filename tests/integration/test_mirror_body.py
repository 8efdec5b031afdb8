#!/usr/bin/env python3
"""RequestMirror with request bodies (issue #3): a POST with a Content-Length body and one with a
chunked body reach a recording mirror backend with the same method, path and body while the
client gets the main backend's answer (serval-echo /echo-body sends the body back); a mirror
backend that accepts and never reads does not slow or break the primary (every POST answers in
full within the client's timeout) and its dropped copies show in /metrics
(serval_mirrors_dropped_total); with two mirrors, the live one still gets its copy when the other
is dead; a 4 MiB body reaches the primary intact."""
import os
import re
import shutil
import socket
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from manifests import backend, docs, gateway, gateway_class  # noqa: E402
from svtest import check  # noqa: E402


def route(name, host, mirrors):
    filters = "".join(f"""\
    - type: RequestMirror
      requestMirror: {{backendRef: {{name: {m}, port: 80}}}}
""" for m in mirrors)
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: demo}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: ["{host}"]
  rules:
  - filters:
{filters}    backendRefs: [{{name: svc-a, port: 80}}]
"""


class Recorder:
    """A mirror backend that reads each request whole (Content-Length or chunked body) and
    records (method, path, headers {lower: value}, body, raw body bytes), then answers 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []
        self.srv = t.TcpServer(self.handle)

    def handle(self, sock, _peer):
        try:
            self.read_one(sock)
        except (EOFError, ValueError, IndexError):
            pass  # a copy the gateway dropped: nothing recorded

    def read_one(self, sock):
        head, rest = t.read_request_head(sock)
        if not head:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        hdrs = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
        rd = t._Reader(sock, 10.0)
        rd.buf = rest
        body, raw = b"", b""
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            parts = []
            for _ in range(100000):
                size_line = rd.line()
                raw += size_line + b"\r\n"
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        tr = rd.line()
                        raw += tr + b"\r\n"
                        if not tr:
                            break
                    break
                piece = rd.exact(size + 2)
                raw += piece
                parts.append(piece[:-2])
            body = b"".join(parts)
        elif "content-length" in hdrs:
            body = raw = rd.exact(int(hdrs["content-length"]))
        with self.lock:
            self.got.append((method, path, hdrs, body, raw))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def wait(self, n, timeout=5.0):
        """The first <n> recorded requests once there are that many (None on timeout)."""
        deadline = t.time.time() + timeout
        while t.time.time() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    return list(self.got[:n])
            t.time.sleep(0.02)
        return None

    def take(self):
        with self.lock:
            got, self.got = self.got, []
        return got


def metric(gw, name):
    text = t.http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()
    return sum(int(m.group(1)) for m in
               re.finditer(r"^serval_" + name + r"\{[^}]*\} (\d+)", text, re.M))


def main():
    e = t.start_echo(pod="pod-a")
    rec = Recorder()
    stop_dead = threading.Event()
    dead_conns = []

    def never_read(sock, _peer):
        dead_conns.append(sock)
        stop_dead.wait(30)

    dead = t.TcpServer(never_read)
    # a small receive window on the dead backend: its kernel takes little before stalling
    dead.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    host = t.unique_addr()
    port = t.free_port(host)
    d = tempfile.mkdtemp(prefix="sv-mirror-body-")
    with open(os.path.join(d, "all.yaml"), "w") as f:
        f.write(docs(gateway_class(), gateway(port), backend("svc-a", e.addr, e.port),
                     backend("svc-rec", rec.srv.addr, rec.srv.port),
                     backend("svc-dead", dead.addr, dead.port),
                     route("rec", "rec.test", ["svc-rec"]),
                     route("dead", "dead.test", ["svc-dead"]),
                     route("both", "both.test", ["svc-dead", "svc-rec"])))
    gw = t.start_gateway(["--config-dir", d, "--bind", host, "--workers", "2",
                          "--upstream-timeout", "3s", "--shutdown-timeout", "5s"],
                         wait=(host, port))

    def post(vhost, body=None, chunks=None, timeout=10.0):
        return t.http_request(host, port, "POST", "/echo-body?x=1", headers={"Host": vhost},
                              body=body, chunks=chunks, timeout=timeout)

    deadline = t.time.time() + 10
    r = t.http_request(host, port, "GET", "/", headers={"Host": "rec.test"})
    while r.status != 200 and t.time.time() < deadline:
        t.time.sleep(0.1)
        r = t.http_request(host, port, "GET", "/", headers={"Host": "rec.test"})
    check("mirror body: routes are up", r.status == 200, r)
    got = rec.wait(1)
    check("mirror body: a body-less GET is still mirrored",
          got is not None and got[0][0] == "GET" and got[0][3] == b"", got)
    rec.take()

    # Content-Length bodies: one that arrives with the head, one that streams behind it
    for size in (11, 300000):
        body = os.urandom(size)
        r = post("rec.test", body=body)
        check(f"mirror body: primary echoes the {size}-byte body",
              r.status == 200 and r.body == body, (r, len(r.body)))
        got = rec.wait(1)
        ok = got is not None and got[0][:2] == ("POST", "/echo-body?x=1") and got[0][3] == body
        check(f"mirror body: mirror got method, path and the {size}-byte Content-Length body",
              ok, got and (got[0][:3], len(got[0][3])))
        check(f"mirror body: mirror's copy says Content-Length {size}",
              got is not None and got[0][2].get("content-length") == str(size),
              got and got[0][2])
        rec.take()

    # a chunked body: the mirror sees the same chunked framing and the same bytes
    chunks = [os.urandom(n) for n in (1, 5000, 70000, 3, 200000)]
    r = post("rec.test", chunks=chunks)
    check("mirror body: primary echoes the chunked body",
          r.status == 200 and r.body == b"".join(chunks), (r, len(r.body)))
    got = rec.wait(1)
    raw = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    check("mirror body: mirror got the chunked body, framing included",
          got is not None and got[0][0] == "POST" and
          got[0][2].get("transfer-encoding", "").lower() == "chunked" and
          got[0][3] == b"".join(chunks) and got[0][4] == raw,
          got and (got[0][:3], len(got[0][3])))
    rec.take()

    # 1 MiB streamed in pieces (the mirror keeps up): the copy passes its ring several times
    pieces = [os.urandom(65536) for _ in range(16)]

    def slowly():
        for p in pieces:
            t.time.sleep(0.02)
            yield p

    r = post("rec.test", chunks=slowly())
    check("mirror body: primary echoes a streamed 1 MiB chunked body",
          r.status == 200 and r.body == b"".join(pieces), (r, len(r.body)))
    got = rec.wait(1)
    check("mirror body: mirror got the streamed 1 MiB body whole",
          got is not None and got[0][3] == b"".join(pieces), got and (got[0][:3], len(got[0][3])))
    rec.take()

    # a mirror backend that never reads: every POST still completes, the drops are counted
    dropped0 = metric(gw, "mirrors_dropped_total")
    started0 = metric(gw, "mirrors_total")
    big = os.urandom(2 << 20)
    results = []
    for i in range(6):
        try:
            r = post("dead.test", body=big, timeout=10.0)
            results.append(r.status == 200 and r.body == big)
        except (OSError, EOFError, ValueError) as ex:
            results.append(ex)
    check("mirror body: a never-reading mirror does not break the primary (6 x 2 MiB POSTs)",
          all(x is True for x in results), results)
    check("mirror body: copies to it were started", metric(gw, "mirrors_total") - started0 >= 6)
    dropped = metric(gw, "mirrors_dropped_total") - dropped0
    check("mirror body: copies it cannot take show in serval_mirrors_dropped_total",
          dropped >= 1, dropped)

    # two mirrors, one dead: the live one still gets the whole body
    body = os.urandom(200000)
    r = post("both.test", body=body)
    check("mirror body: primary answers with a dead and a live mirror",
          r.status == 200 and r.body == body, r)
    got = rec.wait(1)
    check("mirror body: the live mirror got the whole body next to a dead one",
          got is not None and got[0][3] == body, got and (got[0][:3], len(got[0][3])))
    rec.take()

    # a large body: the primary gets it intact (the mirror gets it whole or drops its copy)
    large = os.urandom(4 << 20)
    dropped0 = metric(gw, "mirrors_dropped_total")
    r = post("rec.test", body=large, timeout=20.0)
    check("mirror body: a 4 MiB body reaches the primary intact",
          r.status == 200 and r.body == large, (r, len(r.body)))
    got = rec.wait(1)
    check("mirror body: the mirror got the 4 MiB body intact, or its copy counted as dropped",
          (got is not None and got[0][3] == large) or
          metric(gw, "mirrors_dropped_total") > dropped0,
          got and len(got[0][3]))

    stop_dead.set()
    rc = t.stop(gw)
    check("mirror body: clean exit", rc == 0 and gw.returncode == 0, gw.returncode)
    rec.srv.close()
    dead.close()
    shutil.rmtree(d, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
