#!/usr/bin/env python3
"""serval-echo on its own: the echo-basic contract and the extra endpoints proxy tests rely on."""
import os
import socket
import threading
import time

import svtest as t
from svtest import check, http_request


def test_contract(e):
    r = http_request(e.addr, e.port, "GET", "/some/path?x=1&y=%20z",
                     headers=[("Host", "example.com:81"), ("x-lower-case", "a"),
                              ("X-Multi", "1"), ("x-multi", "2"), ("User-Agent", "svtest")])
    check("echo: 200", r.status == 200, r)
    check("echo: content-type json", r.header("content-type") == "application/json",
          r.header("content-type"))
    check("echo: nosniff", r.header("x-content-type-options") == "nosniff")
    j = r.json()
    check("echo: path with query as received", j["path"] == "/some/path?x=1&y=%20z", j["path"])
    check("echo: host", j["host"] == "example.com:81", j["host"])
    check("echo: method", j["method"] == "GET")
    check("echo: proto", j["proto"] == "HTTP/1.1")
    h = j["headers"]
    check("echo: Host not in headers", "Host" not in h and "host" not in h, h)
    check("echo: canonical header names", h.get("X-Lower-Case") == ["a"], h)
    check("echo: repeated header values in order", h.get("X-Multi") == ["1", "2"], h)
    check("echo: identity", (j["namespace"], j["pod"], j["service"]) ==
          ("ns-one", "infra-backend-v1-abc-def", "svc"), j)
    check("echo: httpPort", j["httpPort"] == str(e.port), j.get("httpPort"))
    r = http_request(e.addr, e.port, "POST", "/p", body=b"hello")
    check("echo: POST method echoed", r.status == 200 and r.json()["method"] == "POST", r)
    r = http_request(e.addr, e.port, "HEAD", "/head")
    check("echo: HEAD has length, no body",
          r.status == 200 and int(r.header("content-length")) > 50 and r.body == b"", r)
    log = t.wait_log(e, r"Echoing back request made to /some/path\?x=1&y=%20z to client "
                        r"\(127\.[0-9.]+:\d+\)", 5)
    check("echo: log line per request", log is not None)


def test_env_identity():
    e2 = t.start_echo(env={"POD_NAME": "web-backend-1-2", "NAMESPACE": "gateway-x"})
    j = http_request(e2.addr, e2.port, "GET", "/").json()
    check("echo: POD_NAME/NAMESPACE from env", (j["pod"], j["namespace"]) ==
          ("web-backend-1-2", "gateway-x"), j)
    t.stop(e2)


def test_delay_status_health(e):
    t0 = time.monotonic()
    r = http_request(e.addr, e.port, "GET", "/d?delay=300ms")
    took = time.monotonic() - t0
    check("delay: answered", r.status == 200 and r.json()["path"] == "/d?delay=300ms", r)
    check("delay: waited at least the delay", took >= 0.29, took)
    r = http_request(e.addr, e.port, "GET", "/d?delay=1.5q")
    check("delay: malformed duration -> 400", r.status == 400, r)
    codes = [http_request(e.addr, e.port, "GET", f"/d?delay={d}").status
             for d in ("0", "250us", "1.5ms", "1ms500us", "%31ms")]
    check("delay: Go duration forms (0, us, fractions, sums, %-encoded)", codes == [200] * 5, codes)
    codes = [http_request(e.addr, e.port, "GET", f"/d?delay={d}").status
             for d in ("-1s", "11m", "5", "ms")]
    check("delay: negative, over 10 minutes, unitless, no number -> 400", codes == [400] * 4,
          codes)
    for code in (201, 404, 418, 503):
        r = http_request(e.addr, e.port, "GET", f"/status/{code}")
        check(f"status: /status/{code}", r.status == code, r)
    r = http_request(e.addr, e.port, "GET", "/status/204")
    check("status: 204 without body or length", r.status == 204 and
          r.header("content-length") is None and r.body == b"", r.headers)
    r = http_request(e.addr, e.port, "GET", "/status/304")
    check("status: 304 without body", r.status == 304 and r.body == b"", r)
    r = http_request(e.addr, e.port, "GET", "/status/abc")
    check("status: bad code -> 400", r.status == 400, r)
    r = http_request(e.addr, e.port, "GET", "/health")
    check("health: 200 OK", r.status == 200 and r.body == b"OK", r)


def test_retry(e):
    path = "/retry/x?uuid=u-1&succeedAfter=2&responseCode=503"
    got = [http_request(e.addr, e.port, "GET", path).status for _ in range(3)]
    check("retry: first N fail with the code, then echo", got == [503, 503, 200], got)
    got = [http_request(e.addr, e.port, "GET", p).status for p in
           ("/retry/q?uuid=a%2Db&succeedAfter=1&responseCode=502",
            "/retry/q?succeedAfter=1&uuid=a-b&responseCode=502")]
    check("retry: uuid percent-decoded, parameters in any order", got == [502, 200], got)
    got2 = http_request(e.addr, e.port, "GET", "/retry/x?uuid=u-2&succeedAfter=1&responseCode=500")
    check("retry: uuids counted separately", got2.status == 500, got2)
    resets = 0
    for _ in range(2):
        try:
            http_request(e.addr, e.port, "GET", "/retry/y?uuid=u-3&succeedAfter=2")
        except (ConnectionResetError, EOFError):
            resets += 1
    check("retry: no responseCode -> connection reset", resets == 2, resets)
    r = http_request(e.addr, e.port, "GET", "/retry/y?uuid=u-3&succeedAfter=2")
    check("retry: then succeeds", r.status == 200 and r.json()["path"].startswith("/retry/y"), r)
    t0 = time.monotonic()
    r = http_request(e.addr, e.port, "GET",
                     "/retry/z?uuid=u-4&succeedAfter=1&responseCode=500&delayRetry=200ms")
    check("retry: delayRetry delays the failure", r.status == 500 and
          time.monotonic() - t0 >= 0.19, r)


def test_set_header(e):
    r = http_request(e.addr, e.port, "GET", "/",
                     headers={"X-Echo-Set-Header": "X-Foo:bar, x-Two: a b ,X-Foo:baz"})
    check("set-header: name case preserved", ("X-Foo", "bar,baz") in r.headers, r.headers)
    check("set-header: second header", ("x-Two", "a b") in r.headers, r.headers)
    r = http_request(e.addr, e.port, "GET", "/", headers={"X-Echo-Set-Header": ""})
    check("set-header: empty value adds nothing",
          [k for k, _ in r.headers] == ["Content-Type", "Content-Length", "X-Content-Type-Options"],
          r.headers)


def test_websocket(e):
    ws = t.WebSocket(e.addr, e.port, "/ws")
    check("ws: 101", ws.response.status == 101, ws.response)
    check("ws: accept key", ws.response.header("sec-websocket-accept") == ws.expected_accept())
    ws.send(0x1, b"hello websocket")
    check("ws: text echoed", ws.recv() == (0x1, b"hello websocket"))
    big = os.urandom(70000)
    ws.send(0x2, big)
    check("ws: 70000-byte binary echoed", ws.recv() == (0x2, big))
    ws.send(0x9, b"p")
    check("ws: ping -> pong", ws.recv() == (0xA, b"p"))
    ws.send(0x8, b"\x03\xe8")
    check("ws: close echoed", ws.recv() == (0x8, b"\x03\xe8"))
    ws.close()
    r = http_request(e.addr, e.port, "GET", "/ws")
    check("ws: plain GET /ws -> 400", r.status == 400, r)


def test_echo_body(e):
    blob = os.urandom(5 * 1024 * 1024)
    pieces = [blob[i:i + 100_003] for i in range(0, len(blob), 100_003)]
    r = http_request(e.addr, e.port, "POST", "/echo-body", chunks=pieces, timeout=30)
    check("echo-body: 5 MB chunked body streamed back", r.status == 200 and r.body == blob,
          f"{r.status} {len(r.body)}")
    check("echo-body: chunked answer to chunked request",
          (r.header("transfer-encoding") or "").lower() == "chunked")
    # a slow reader: the server must stop reading while its output is not drained, then resume
    s = socket.create_connection((e.addr, e.port), timeout=20)
    body = blob[:4 * 1024 * 1024]
    head = f"POST /echo-body HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n\r\n"
    sender = threading.Thread(target=lambda: s.sendall(head.encode() + body), daemon=True)
    sender.start()
    got = b""
    need = None
    while need is None or len(got) < need:
        b = s.recv(131072)
        if not b:
            break
        got += b
        if need is None and b"\r\n\r\n" in got:
            need = got.index(b"\r\n\r\n") + 4 + len(body)
        time.sleep(0.002)
    sender.join(10)
    s.close()
    check("echo-body: slow reader gets the whole body back",
          need is not None and got[need - len(body):need] == body, len(got))
    r = http_request(e.addr, e.port, "PUT", "/echo-body", body=blob[:300000], timeout=30)
    check("echo-body: CL body echoed with CL", r.body == blob[:300000] and
          r.header("content-length") == "300000", r)
    r = http_request(e.addr, e.port, "POST", "/echo-body", body=b"abc",
                     headers={"Expect": "100-continue"})
    check("expect: 100 Continue before the answer", [s for s, _ in r.interim] == [100] and
          r.body == b"abc", (r.interim, r.body))


def test_stats_keepalive_pipelining(e):
    before = t.echo_stats(e.addr, e.port)
    with t.Client(e.addr, e.port) as c:
        codes = [c.request("GET", f"/k{i}").status for i in range(5)]
        c.send_raw(b"".join(f"GET /pipe{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
                            for i in range(3)))
        paths = [c.read().json()["path"] for _ in range(3)]
    check("keep-alive: 5 answers on one connection", codes == [200] * 5, codes)
    check("pipelining: answers in order", paths == ["/pipe0", "/pipe1", "/pipe2"], paths)
    after = t.echo_stats(e.addr, e.port)
    check("stats: one more connection for the keep-alive client (plus one for /stats)",
          after["connections"] - before["connections"] == 2, (before, after))
    check("stats: eight more requests", after["requests"] - before["requests"] == 8,
          (before, after))
    with t.Client(e.addr, e.port) as c:
        c.send_raw(b"GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                   b"GET /after-up HTTP/1.1\r\nHost: h\r\n\r\n")
        paths = [c.read().json()["path"] for _ in range(2)]
    check("upgrade refused: plain answer, next request still served",
          paths == ["/up", "/after-up"], paths)


def test_bytes_slow_reset_close(e):
    r = http_request(e.addr, e.port, "GET", "/bytes/100000")
    check("bytes: N pattern bytes", r.body == t.pattern_bytes(100000) and
          r.header("content-length") == "100000", r)
    r = http_request(e.addr, e.port, "GET", "/bytes/70001?chunked=1")
    check("bytes: chunked", r.body == t.pattern_bytes(70001) and
          r.header("transfer-encoding") == "chunked", r)
    r = http_request(e.addr, e.port, "GET", "/slow?rate=4000&n=1200")
    check("slow: body", r.status == 200 and r.body == t.pattern_bytes(1200), r)
    try:
        http_request(e.addr, e.port, "GET", "/reset")
        check("reset: connection reset without response", False, "got a response")
    except ConnectionResetError:
        check("reset: connection reset without response", True)
    except EOFError as ex:
        check("reset: connection reset without response", False, repr(ex))
    with t.Client(e.addr, e.port) as c:
        r = c.request("GET", "/close")
        eof = c.sock.recv(10) == b""
    check("close: answers then closes", r.status == 200 and r.closed and eof, r.headers)


def test_half_close_and_backpressure(e):
    s = socket.create_connection((e.addr, e.port), timeout=5)
    s.sendall(b"GET /half HTTP/1.1\r\nHost: h\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    status, _, body = t.parse_response(data)
    check("half-close: answered, then closed", status == 200 and b'"/half"' in body, data[:60])
    with t.Client(e.addr, e.port, timeout=20) as c:
        c.send_raw(b"".join(f"GET /bytes/{200000 + i}?chunked={i % 2} HTTP/1.1\r\nHost: h\r\n\r\n"
                            .encode() for i in range(20)))
        time.sleep(0.3)  # let the server hit its output high-water mark
        ok = all(c.read().body == t.pattern_bytes(200000 + i) for i in range(20))
    check("backpressure: 20 pipelined 200 KB answers, in order, byte-exact", ok)
    ws = t.WebSocket.__new__(t.WebSocket)
    import base64
    ws.key = base64.b64encode(os.urandom(16)).decode()
    ws.client = t.Client(e.addr, e.port)
    ws.rd = ws.client.rd
    hs = (f"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          f"Sec-WebSocket-Key: {ws.key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    mask = b"\x01\x02\x03\x04"
    frame = bytes([0x81, 0x80 | 5]) + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(b"early"))
    ws.client.send_raw(hs + frame)  # a frame in the same packet as the handshake
    r = ws.client.read()
    check("ws: frame sent with the handshake is echoed",
          r.status == 101 and ws.recv() == (0x1, b"early"), r)
    ws.close()


def test_idle_timeout():
    e2 = t.start_echo(args=["--idle-timeout", "300"])
    s = socket.create_connection((e2.addr, e2.port), timeout=5)
    t0 = time.monotonic()
    closed = s.recv(10) == b""
    s.close()
    check("idle-timeout: idle connection closed by the server", closed and
          time.monotonic() - t0 < 4.5)
    t.stop(e2)


def test_bad_requests(e):
    data = t.raw_request(e.addr, e.port, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                                         b"Content-Length: 2\r\n\r\nab")
    status, _, _ = t.parse_response(data)
    check("bad: duplicate Content-Length -> 400", status == 400, data[:80])
    data = t.raw_request(e.addr, e.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " +
                         b"x" * 70000 + b"\r\n\r\n")
    status, _, _ = t.parse_response(data)
    check("bad: oversized header -> 431", status == 431, data[:80])


def test_concurrency(e):
    errors = []

    def worker(n):
        try:
            with t.Client(e.addr, e.port) as c:
                for i in range(20):
                    j = c.request("GET", f"/c{n}/{i}").json()
                    if j["path"] != f"/c{n}/{i}":
                        errors.append(j["path"])
        except Exception as ex:  # noqa: BLE001 - any failure counts
            errors.append(repr(ex))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    check("concurrency: 16 clients x 20 requests", not errors, errors[:3])


def main():
    e = t.start_echo(pod="infra-backend-v1-abc-def", ns="ns-one", service="svc")
    for fn in (test_contract, test_delay_status_health, test_retry, test_set_header,
               test_websocket, test_echo_body, test_stats_keepalive_pipelining,
               test_bytes_slow_reset_close, test_half_close_and_backpressure, test_bad_requests,
               test_concurrency):
        try:
            fn(e)
        except Exception as ex:  # noqa: BLE001 - report and continue
            check(f"{fn.__name__} ran without exception", False, repr(ex))
    test_env_identity()
    test_idle_timeout()
    check("echo process still alive", e.poll() is None)
    socket.setdefaulttimeout(None)
    t.finish()


if __name__ == "__main__":
    main()
