#!/usr/bin/env python3
"""serval-gateway proxying through serval-echo: GET/POST with Content-Length and chunked bodies
(several MB, byte-exact), keep-alive on both sides, pipelining order, HEAD/204/304,
Expect: 100-continue, WebSocket tunnel, hop-by-hop removal and X-Forwarded-* as the backend
saw them, routing by prefix and host, 404, /metrics and /readyz, clean SIGTERM."""
import json
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from svtest import check  # noqa: E402


def run(fn, *args):
    try:
        fn(*args)
    except Exception as ex:  # noqa: BLE001 - report and continue
        check(f"{fn.__name__} ran without exception", False, repr(ex))


def test_get_and_headers(gw, e):
    r = t.http_request(gw.addr, gw.port, "GET", "/some/path?x=1",
                       headers=[("Host", "example.com"), ("Connection", "close, X-Hop"),
                                ("X-Hop", "1"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
                                ("Proxy-Connection", "keep-alive"), ("X-End", "e2e"),
                                ("X-Forwarded-For", "192.0.2.9")])
    check("get: 200 through the proxy", r.status == 200, r)
    j = r.json()
    h = j["headers"]
    check("get: path and query passed", j["path"] == "/some/path?x=1", j["path"])
    check("get: Host passed through", j["host"] == "example.com", j["host"])
    check("get: end-to-end header kept", h.get("X-End") == ["e2e"], h)
    for name in ("X-Hop", "Keep-Alive", "Te", "Proxy-Connection", "Connection"):
        check(f"get: hop-by-hop {name} removed", name not in h, h)
    xff = ",".join(h.get("X-Forwarded-For", []))
    check("get: X-Forwarded-For appended with the client address",
          xff.replace(" ", "") == "192.0.2.9,127.0.0.1" or xff.replace(" ", "").startswith(
              "192.0.2.9,127."), xff)
    check("get: X-Forwarded-Proto http", h.get("X-Forwarded-Proto") == ["http"], h)
    check("get: X-Forwarded-Port is the listener port",
          h.get("X-Forwarded-Port") == [str(gw.port)], h)
    check("get: answered by the backend", j["pod"] == "pod-a", j)


def test_bodies(gw, e):
    blob = os.urandom(6 * 1024 * 1024 + 17)
    r = t.http_request(gw.addr, gw.port, "POST", "/echo-body", body=blob, timeout=60)
    check("post: 6 MB Content-Length body echoed byte-exact", r.status == 200 and r.body == blob,
          f"{r.status} {len(r.body)}")
    pieces = [blob[i:i + 65_537] for i in range(0, 3 * 1024 * 1024, 65_537)]
    r = t.http_request(gw.addr, gw.port, "POST", "/echo-body", chunks=pieces, timeout=60)
    check("post: 3 MB chunked body echoed byte-exact",
          r.status == 200 and r.body == b"".join(pieces), f"{r.status} {len(r.body)}")
    r = t.http_request(gw.addr, gw.port, "GET", "/bytes/5000000", timeout=60)
    check("get: 5 MB Content-Length download byte-exact",
          r.status == 200 and r.body == t.pattern_bytes(5000000), f"{r.status} {len(r.body)}")
    r = t.http_request(gw.addr, gw.port, "GET", "/bytes/3000001?chunked=1", timeout=60)
    check("get: 3 MB chunked download byte-exact",
          r.status == 200 and r.body == t.pattern_bytes(3000001) and
          (r.header("transfer-encoding") or "").lower() == "chunked", f"{r.status} {len(r.body)}")


def test_keepalive_and_pipelining(gw, e):
    before = t.echo_stats(e.addr, e.port)
    with t.Client(gw.addr, gw.port) as c:
        codes = [c.request("GET", f"/k{i}").status for i in range(20)]
        c.send_raw(b"".join(f"GET /pipe{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
                            for i in range(5)))
        paths = [c.read().json()["path"] for _ in range(5)]
        r = c.request("POST", "/echo-body", body=b"x" * 100000)
        check("keep-alive: body request on the same connection", r.body == b"x" * 100000)
        r = c.request("GET", "/after")
        check("keep-alive: still open after a body", r.status == 200 and not r.closed)
    check("keep-alive: 20 answers on one client connection", codes == [200] * 20, codes)
    check("pipelining: answers in order", paths == [f"/pipe{i}" for i in range(5)], paths)
    after = t.echo_stats(e.addr, e.port)
    new_conns = after["connections"] - before["connections"] - 1  # minus the /stats call
    check("keep-alive: upstream connections reused (27 requests, <= 2 new upstream conns)",
          0 <= new_conns <= 2, (before, after))


def test_upstream_closes_pooled(gw, e):
    for i in range(5):
        r = t.http_request(gw.addr, gw.port, "GET", "/close")
        check(f"pool: upstream answered then closed ({i})", r.status == 200, r)
        r = t.http_request(gw.addr, gw.port, "GET", f"/next{i}")
        check(f"pool: next request after an upstream close is served ({i})", r.status == 200, r)


def test_http10_client(gw, e):
    data = t.raw_request(gw.addr, gw.port, b"GET /v10 HTTP/1.0\r\nHost: a\r\n\r\n", timeout=10)
    status, headers, body = t.parse_response(data)
    check("http/1.0: answered", status == 200, data[:80])
    proto = json.loads(body.decode() or "{}").get("proto")
    check("http/1.0: forwarded upstream as HTTP/1.0 (so the answer is never chunked)",
          proto == "HTTP/1.0", proto)
    with t.Client(gw.addr, gw.port) as c:
        c.send_raw(b"GET /k10 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        r1 = c.read()
        c.send_raw(b"GET /k10b HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        r2 = c.read()
    check("http/1.0: keep-alive honoured", r1.status == 200 and r2.status == 200 and
          r2.json()["path"] == "/k10b", (r1, r2))


def test_head_204_304(gw, e):
    with t.Client(gw.addr, gw.port) as c:
        r = c.request("HEAD", "/bytes/1000")
        check("head: no body, length kept", r.status == 200 and r.body == b"" and
              r.header("content-length") == "1000", r)
        r = c.request("GET", "/status/204")
        check("204: no body", r.status == 204 and r.body == b"", r)
        r = c.request("GET", "/status/304")
        check("304: no body", r.status == 304 and r.body == b"", r)
        r = c.request("GET", "/after-304")
        check("connection usable after HEAD/204/304", r.status == 200 and
              r.json()["path"] == "/after-304", r)


def test_expect_continue(gw, e):
    with t.Client(gw.addr, gw.port) as c:
        r = c.request("POST", "/echo-body", body=b"abcdef", headers={"Expect": "100-continue"})
    check("expect: upstream's 100 relayed, then the answer",
          [s for s, _ in r.interim] == [100] and r.status == 200 and r.body == b"abcdef",
          (r.interim, r.status, r.body))


def test_websocket(gw, e):
    ws = t.WebSocket(gw.addr, gw.port, "/ws")
    check("ws: 101 through the proxy", ws.response.status == 101, ws.response)
    check("ws: accept key from the backend",
          ws.response.header("sec-websocket-accept") == ws.expected_accept())
    ws.send(0x1, b"hello through serval")
    check("ws: text echoed both ways", ws.recv() == (0x1, b"hello through serval"))
    big = os.urandom(300000)
    ws.send(0x2, big)
    check("ws: 300 KB binary echoed", ws.recv() == (0x2, big))
    ws.send(0x8, b"\x03\xe8")
    check("ws: close echoed", ws.recv() == (0x8, b"\x03\xe8"))
    ws.close()


def test_routing(gw, e, e2):
    r = t.http_request(gw.addr, gw.port, "GET", "/api/v1/x")
    check("route: longest prefix /api goes to backend b", r.status == 200 and
          r.json()["pod"] == "pod-b", r)
    r = t.http_request(gw.addr, gw.port, "GET", "/apix")
    check("route: /apix is not under /api", r.status == 200 and r.json()["pod"] == "pod-a", r)
    r = t.http_request(gw.addr, gw.port, "GET", "/", headers={"Host": "only.example"})
    check("route: host route wins for its host", r.status == 200 and
          r.json()["pod"] == "pod-b", r)
    data = t.raw_request(gw.addr, gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3,
                         read_until_close=False)
    check("route: plain request works raw", data.startswith(b"HTTP/1.1 200"), data[:40])


def test_no_route(gw2):
    with t.Client(gw2.addr, gw2.port) as c:
        r = c.request("GET", "/nothing-here")
        check("404: no route", r.status == 404, r)
        r2 = c.request("GET", "/nothing/else")
        check("404: connection stays usable for body-less requests", r2.status == 404, r2)


def test_concurrency(gw, e):
    errors = []

    def worker(n):
        try:
            with t.Client(gw.addr, gw.port, timeout=20) as c:
                for i in range(25):
                    j = c.request("GET", f"/c{n}/{i}").json()
                    if j["path"] != f"/c{n}/{i}":
                        errors.append(j["path"])
        except Exception as ex:  # noqa: BLE001 - any failure counts
            errors.append(repr(ex))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    check("concurrency: 24 clients x 25 requests all answered correctly", not errors, errors[:3])


def test_admin(gw):
    r = t.http_request(gw.admin[0], gw.admin[1], "GET", "/readyz")
    check("admin: /readyz 200 while serving", r.status == 200, r)
    r = t.http_request(gw.admin[0], gw.admin[1], "GET", "/metrics")
    text = r.body.decode()
    check("admin: /metrics has per-worker request counters",
          'serval_requests_total{worker="0"}' in text and
          'serval_requests_total{worker="1"}' in text, text[:300])
    total = sum(int(line.split()[-1]) for line in text.splitlines()
                if line.startswith("serval_responses_2xx_total{"))
    check("admin: 2xx responses counted", total > 50, total)


def main():
    e = t.start_echo(pod="pod-a")
    e2 = t.start_echo(pod="pod-b")
    addr = t.unique_addr()
    port = t.free_port(addr)
    gw = t.start_gateway(["--workers", "2", "--listen", f"{addr}:{port}",
                          "--route", f"/={e.addr}:{e.port}",
                          "--route", f"/api={e2.addr}:{e2.port}",
                          "--route", f"only.example/={e2.addr}:{e2.port}"],
                         wait=(addr, port))
    gw.addr, gw.port = addr, port
    addr2 = t.unique_addr()
    port2 = t.free_port(addr2)
    gw2 = t.start_gateway(["--workers", "1", "--listen", f"{addr2}:{port2}",
                           "--route", f"/api={e.addr}:{e.port}"], wait=(addr2, port2))
    gw2.addr, gw2.port = addr2, port2
    socket.setdefaulttimeout(30)
    run(test_get_and_headers, gw, e)
    run(test_bodies, gw, e)
    run(test_keepalive_and_pipelining, gw, e)
    run(test_head_204_304, gw, e)
    run(test_upstream_closes_pooled, gw, e)
    run(test_http10_client, gw, e)
    run(test_expect_continue, gw, e)
    run(test_websocket, gw, e)
    run(test_routing, gw, e, e2)
    run(test_no_route, gw2)
    run(test_concurrency, gw, e)
    run(test_admin, gw)
    check("gateway alive after everything", gw.poll() is None)
    rc = t.stop(gw)
    check("gateway: SIGTERM exits 0, sanitizers clean", rc == 0 and gw.returncode == 0,
          gw.returncode)
    rc = t.stop(gw2)
    check("gateway 2: SIGTERM exits 0, sanitizers clean", rc == 0 and gw2.returncode == 0,
          gw2.returncode)
    t.finish()


if __name__ == "__main__":
    main()
