#!/usr/bin/env python3
"""Streaming and lifecycle: a 50 MB download to a slow reader and a 50 MB upload to a slow
upstream go through with the gateway's RSS bounded (backpressure, no whole-body buffering); an
upstream killed mid-response ends the client's response instead of hanging it; SIGTERM with
requests in flight lets them finish (none lost) and exits 0."""
import hashlib
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from svtest import check  # noqa: E402

BIG = 50 * 1024 * 1024
RSS_BOUND = 40 * 1024 * 1024  # growth allowed: buffer rings touched + ASan, far below 50 MB


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssWatch:
    def __init__(self, pid):
        self.pid, self.base, self.peak, self.stop = pid, rss(pid), 0, False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.05)

    def growth(self):
        self.stop = True
        self.th.join(2)
        return self.peak - self.base


def slow_upstream():
    """Backend reading a Content-Length body slowly, then answering with its length and md5."""
    addr = t.unique_addr()
    srv = socket.socket()
    srv.bind((addr, 0))
    srv.listen(16)

    def handle(c):
        try:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            data = b""
            while b"\r\n\r\n" not in data:
                data += c.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            n = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                     if ln.lower().startswith(b"content-length:")][0])
            md5 = hashlib.md5(rest)
            got = len(rest)
            while got < n:
                b = c.recv(65536)
                if not b:
                    break
                md5.update(b)
                got += len(b)
                time.sleep(0.001)
            body = f"{got} {md5.hexdigest()}".encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            c.close()
        except OSError:
            pass

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return addr, srv.getsockname()[1]


def test_slow_reader(gw):
    watch = RssWatch(gw.pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(30)
    s.connect((gw.addr, gw.port))
    s.sendall(f"GET /bytes/{BIG} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    data = bytearray()
    head = None
    md5 = hashlib.md5()
    got = 0
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        b = s.recv(65536)
        if not b:
            break
        if head is None:
            data += b
            if b"\r\n\r\n" in data:
                head, _, rest = bytes(data).partition(b"\r\n\r\n")
                md5.update(rest)
                got = len(rest)
        else:
            md5.update(b)
            got += len(b)
        if got >= BIG:
            break
        time.sleep(0.0015)
    s.close()
    growth = watch.growth()
    check("slow reader: 50 MB delivered", got == BIG, got)
    check("slow reader: body byte-exact", md5.hexdigest() ==
          hashlib.md5(t.pattern_bytes(BIG)).hexdigest())
    check(f"slow reader: gateway RSS growth bounded (< {RSS_BOUND >> 20} MB)", growth < RSS_BOUND,
          f"{growth >> 20} MB")


def test_slow_upstream_upload(gw):
    watch = RssWatch(gw.pid)
    blob = os.urandom(1024 * 1024) * 50
    r = t.http_request(gw.addr, gw.port, "POST", "/slowup", body=blob, timeout=60)
    growth = watch.growth()
    check("slow upstream: 50 MB upload delivered byte-exact",
          r.status == 200 and r.body.decode() == f"{len(blob)} {hashlib.md5(blob).hexdigest()}",
          (r.status, r.body[:80]))
    check(f"slow upstream: gateway RSS growth bounded (< {RSS_BOUND >> 20} MB)",
          growth < RSS_BOUND, f"{growth >> 20} MB")


def test_upstream_killed(gwk, victim):
    s = socket.create_connection((gwk.addr, gwk.port), timeout=10)
    s.sendall(b"GET /slow?rate=200000&n=5000000 HTTP/1.1\r\nHost: a\r\n\r\n")
    first = s.recv(4096)
    check("killed: response started", first.startswith(b"HTTP/1.1 200"), first[:40])
    os.kill(victim.pid, signal.SIGKILL)
    t0 = time.monotonic()
    ended = False
    try:
        while time.monotonic() - t0 < 8:
            if not s.recv(65536):
                ended = True
                break
    except (ConnectionResetError, socket.timeout):
        ended = True
    s.close()
    check("killed: client connection ends promptly (no hang)", ended and
          time.monotonic() - t0 < 8, time.monotonic() - t0)
    r = t.http_request(gwk.admin[0], gwk.admin[1], "GET", "/healthz")
    check("killed: gateway still healthy", r.status == 200)


def test_sigterm_in_flight(e):
    addr = t.unique_addr()
    port = t.free_port(addr)
    gw = t.start_gateway(["--workers", "2", "--listen", f"{addr}:{port}",
                          "--route", f"/={e.addr}:{e.port}", "--drain-delay", "300ms",
                          "--shutdown-timeout", "10s"], wait=(addr, port))
    results = []

    def one(i):
        try:
            r = t.http_request(addr, port, "GET", "/slow?rate=40000&n=60000", timeout=15)
            results.append(r.status == 200 and r.body == t.pattern_bytes(60000))
        except Exception as ex:  # noqa: BLE001
            results.append(repr(ex))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    time.sleep(0.4)
    gw.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    r = t.http_request(gw.admin[0], gw.admin[1], "GET", "/readyz")
    check("sigterm: /readyz 503 while draining", r.status == 503, r)
    for th in threads:
        th.join(20)
    check("sigterm: all 6 in-flight requests completed", results == [True] * 6, results)
    try:
        gw.wait(15)
    except Exception:  # noqa: BLE001
        pass
    check("sigterm: exit status 0", gw.returncode == 0, gw.returncode)
    check("sigterm: stop reported clean", t.stop(gw) == 0)


def main():
    socket.setdefaulttimeout(30)
    e = t.start_echo(pod="pod-a")
    up = slow_upstream()
    addr = t.unique_addr()
    port = t.free_port(addr)
    gw = t.start_gateway(["--workers", "2", "--listen", f"{addr}:{port}",
                          "--route", f"/={e.addr}:{e.port}",
                          "--route", f"/slowup={up[0]}:{up[1]}"], wait=(addr, port))
    gw.addr, gw.port = addr, port
    victim = t.start_echo(pod="victim")
    addr2 = t.unique_addr()
    port2 = t.free_port(addr2)
    gwk = t.start_gateway(["--workers", "1", "--listen", f"{addr2}:{port2}",
                           "--route", f"/={victim.addr}:{victim.port}"], wait=(addr2, port2))
    gwk.addr, gwk.port = addr2, port2
    for fn, args in ((test_slow_reader, (gw,)), (test_slow_upstream_upload, (gw,)),
                     (test_upstream_killed, (gwk, victim)), (test_sigterm_in_flight, (e,))):
        try:
            fn(*args)
        except Exception as ex:  # noqa: BLE001
            check(f"{fn.__name__} ran without exception", False, repr(ex))
    if victim in t._procs:
        t._procs.remove(victim)
    for g in (gw, gwk):
        rc = t.stop(g)
        check("gateway: clean exit", rc == 0 and g.returncode == 0, g.returncode)
    t.finish()


if __name__ == "__main__":
    main()
