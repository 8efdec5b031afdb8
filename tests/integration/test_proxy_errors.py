#!/usr/bin/env python3
"""serval-gateway's answers to bad input and failing upstreams (DESIGN.md error table): 400 and
close for malformed and smuggling-shaped requests, 431, 404, 502 (refused, reset), retry of an
idempotent request on another endpoint, 504, header and idle timeouts, and the connection limit
leaving existing connections working."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from svtest import check  # noqa: E402


def run(fn, *args):
    try:
        fn(*args)
    except Exception as ex:  # noqa: BLE001 - report and continue
        check(f"{fn.__name__} ran without exception", False, repr(ex))


def blackhole():
    """A backend that accepts and reads but never answers. Returns (addr, port)."""
    addr = t.unique_addr()
    srv = socket.socket()
    srv.bind((addr, 0))
    srv.listen(64)

    def serve():
        conns = []
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)
            threading.Thread(target=lambda s=c: [s.recv(65536) for _ in iter(int, 1)],
                             daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return addr, srv.getsockname()[1]


def closed_port():
    addr = t.unique_addr()
    s = socket.socket()
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return addr, port


def status_and_closed(host, port, data, timeout=5.0):
    """Send raw bytes; return (status, closed_after) where closed_after says the gateway closed
    the connection after its answer."""
    raw = t.raw_request(host, port, data, timeout=timeout)
    status, _, _ = t.parse_response(raw)
    return status, raw


BAD = [
    ("CL with TE", b"POST /hole HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("duplicate Content-Length", b"POST /hole HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                                 b"Content-Length: 4\r\n\r\nabcd"),
    ("contradictory Content-Length list", b"POST /hole HTTP/1.1\r\nHost: a\r\n"
                                          b"Content-Length: 3, 4\r\n\r\nabcd"),
    ("bare LF", b"GET /hole HTTP/1.1\nHost: a\n\n"),
    ("obs-fold", b"GET /hole HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"),
    ("control byte in a value", b"GET /hole HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n"),
    ("space before colon", b"GET /hole HTTP/1.1\r\nHost : a\r\n\r\n"),
    ("garbage request line", b"HELLO\r\n\r\n"),
    ("bad chunk size", b"POST /hole HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nabc\r\n0\r\n\r\n"),
]


def test_bad_requests(gw):
    for name, data in BAD:
        status, raw = status_and_closed(gw.addr, gw.port, data + b"GET /next HTTP/1.1\r\n"
                                        b"Host: a\r\n\r\n")
        check(f"400: {name}", status == 400, raw[:60])
        check(f"400: {name}: only one answer, then closed", raw.count(b"HTTP/1.1 ") == 1,
              raw[:200])


def test_431(gw):
    status, raw = status_and_closed(gw.addr, gw.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " +
                                    b"x" * 70000 + b"\r\n\r\n")
    check("431: header section over 64 KiB", status == 431, raw[:60])
    status, raw = status_and_closed(gw.addr, gw.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " +
                                    b"x" * 60000 + b"\r\nConnection: close\r\n\r\n")
    check("431: a 60 KB header section is still fine", status == 200, raw[:60])


def test_404(gw):
    r = t.http_request(gw.addr, gw.port, "GET", "/no-such-prefix")
    check("404: no route", r.status == 404, r)


def test_502(gw):
    r = t.http_request(gw.addr, gw.port, "GET", "/dead/x")
    check("502: upstream refused", r.status == 502, r)
    r = t.http_request(gw.addr, gw.port, "POST", "/dead/x", body=b"abc")
    check("502: non-idempotent request to a refused upstream", r.status == 502, r)
    r = t.http_request(gw.addr, gw.port, "GET", "/reset")
    check("502: upstream reset before any response byte", r.status == 502, r)


def test_retry(gw, e):
    before = t.echo_stats(e.addr, e.port)["requests"]
    codes = [t.http_request(gw.addr, gw.port, "GET", f"/half/{i}").status for i in range(8)]
    check("retry: idempotent GETs retried on the live endpoint (8 x 200)", codes == [200] * 8,
          codes)
    after = t.echo_stats(e.addr, e.port)["requests"]
    check("retry: every request reached the live endpoint", after - before == 8, (before, after))
    posts = [t.http_request(gw.addr, gw.port, "POST", f"/half/p{i}", body=b"z").status
             for i in range(4)]
    check("retry: POST not retried (some 502s, the rest 200)",
          set(posts) <= {200, 502} and 502 in posts, posts)


def test_504(gwt):
    t0 = time.monotonic()
    r = t.http_request(gwt.addr, gwt.port, "GET", "/slow-answer?delay=5s", timeout=10)
    took = time.monotonic() - t0
    check("504: upstream response timeout", r.status == 504, r)
    check("504: answered after about --upstream-timeout", 0.3 < took < 4.0, took)


def test_header_timeout(gwt):
    s = socket.create_connection((gwt.addr, gwt.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # never finishes the head
    t0 = time.monotonic()
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError):
        pass
    took = time.monotonic() - t0
    s.close()
    check("header timeout: connection answered 408 or closed", data == b"" or
          data.startswith(b"HTTP/1.1 408"), data[:60])
    check("header timeout: within about --header-timeout", took < 4.0, took)


def test_idle_timeout(gwt):
    with t.Client(gwt.addr, gwt.port) as c:
        r = c.request("GET", "/idle")
        check("idle: first request answered", r.status == 200, r)
        t0 = time.monotonic()
        c.sock.settimeout(5)
        try:
            got = c.sock.recv(10)
        except (socket.timeout, ConnectionResetError):
            got = None
        took = time.monotonic() - t0
    check("idle: keep-alive connection closed by the gateway", got == b"", got)
    check("idle: after about --idle-timeout", 0.3 < took < 4.0, took)


def test_idle_tunnel(gwt):
    ws = t.WebSocket(gwt.addr, gwt.port, "/ws")
    check("idle tunnel: upgraded", ws.response.status == 101, ws.response)
    ws.send(0x1, b"ping-ish")
    check("idle tunnel: traffic flows", ws.recv() == (0x1, b"ping-ish"))
    t0 = time.monotonic()
    ws.client.sock.settimeout(5)
    try:
        got = ws.client.sock.recv(10)
    except (socket.timeout, ConnectionResetError):
        got = None
    took = time.monotonic() - t0
    ws.close()
    check("idle tunnel: closed after about --idle-timeout", got == b"" and 0.3 < took < 4.0,
          (got, took))


def test_conn_limit(gwl):
    clients = [t.Client(gwl.addr, gwl.port) for _ in range(3)]
    ok = [c.request("GET", f"/l/{i}").status for i, c in enumerate(clients)]
    check("limit: three connections served", ok == [200] * 3, ok)
    extra = socket.create_connection((gwl.addr, gwl.port), timeout=5)
    refused = False
    try:
        extra.sendall(b"GET /l/x HTTP/1.1\r\nHost: a\r\n\r\n")
        refused = extra.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        refused = True
    except socket.timeout:
        refused = False
    extra.close()
    check("limit: a fourth connection is refused", refused)
    again = [c.request("GET", f"/l/again{i}").status for i, c in enumerate(clients)]
    check("limit: existing connections unharmed", again == [200] * 3, again)
    for c in clients:
        c.close()
    time.sleep(0.3)
    r = t.http_request(gwl.addr, gwl.port, "GET", "/l/later")
    check("limit: new connections accepted again once others closed", r.status == 200, r)


def test_metrics(gw):
    text = t.http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()

    def total(name):
        return sum(int(line.split()[-1]) for line in text.splitlines()
                   if line.startswith(name + "{"))
    check("metrics: bad requests counted", total("serval_errors_bad_request_total") >= len(BAD))
    check("metrics: retries counted", total("serval_retries_total") >= 1)
    check("metrics: 502s counted", total("serval_errors_bad_gateway_total") >= 3)


def main():
    socket.setdefaulttimeout(20)
    e = t.start_echo(pod="pod-a")
    dead = closed_port()
    hole = blackhole()
    addr = t.unique_addr()
    port = t.free_port(addr)
    gw = t.start_gateway(["--workers", "2", "--listen", f"{addr}:{port}",
                          "--route", f"/={e.addr}:{e.port}",
                          "--route", f"/dead={dead[0]}:{dead[1]}",
                          "--route", f"/half={dead[0]}:{dead[1]},{e.addr}:{e.port}",
                          "--route", f"/hole={hole[0]}:{hole[1]}"], wait=(addr, port))
    gw.addr, gw.port = addr, port
    addr2 = t.unique_addr()
    port2 = t.free_port(addr2)
    gwt = t.start_gateway(["--workers", "2", "--listen", f"{addr2}:{port2}",
                           "--route", f"/={e.addr}:{e.port}", "--upstream-timeout", "700ms",
                           "--header-timeout", "700ms", "--idle-timeout", "800ms"],
                          wait=(addr2, port2))
    gwt.addr, gwt.port = addr2, port2
    addr3 = t.unique_addr()
    port3 = t.free_port(addr3)
    gwl = t.start_gateway(["--workers", "1", "--max-conns", "3", "--listen", f"{addr3}:{port3}",
                           "--route", f"/l={e.addr}:{e.port}"], wait=(addr3, port3))
    gwl.addr, gwl.port = addr3, port3
    run(test_bad_requests, gw)
    run(test_431, gw)
    run(test_502, gw)
    run(test_retry, gw, e)
    run(test_504, gwt)
    run(test_header_timeout, gwt)
    run(test_idle_timeout, gwt)
    run(test_idle_tunnel, gwt)
    time.sleep(0.3)  # let the gateway see the readiness probe's connection close
    run(test_conn_limit, gwl)
    run(test_404, gwl)
    run(test_metrics, gw)
    for g in (gw, gwt, gwl):
        check("gateway alive after the bad input", g.poll() is None)
    for g in (gw, gwt, gwl):
        rc = t.stop(g)
        check("gateway: clean exit (0, sanitizers quiet)", rc == 0 and g.returncode == 0,
              g.returncode)
    t.finish()


if __name__ == "__main__":
    main()
