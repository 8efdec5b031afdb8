#!/usr/bin/env python3
"""Abrupt clients against the gateway under ASan: half heads, half bodies, resets in the middle
of large responses, unread pipelined requests, random bytes, dropped WebSockets, all at once from
several threads. Afterwards the gateway still answers, every connection slot is released, and
it exits cleanly (no leak, no use-after-free)."""
import os
import random
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from svtest import check  # noqa: E402


def rst_close(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def half_head(a):
    s = socket.create_connection(a, timeout=5)
    s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Part")
    rst_close(s)


def half_body(a):
    s = socket.create_connection(a, timeout=5)
    s.sendall(b"POST /echo-body HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" +
              b"y" * 300000)
    time.sleep(0.01)
    rst_close(s)


def reset_mid_response(a):
    s = socket.create_connection(a, timeout=5)
    s.sendall(b"GET /bytes/8000000 HTTP/1.1\r\nHost: a\r\n\r\n")
    got = 0
    while got < 200000:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
    rst_close(s)


def unread_pipeline(a):
    s = socket.create_connection(a, timeout=5)
    s.sendall(b"".join(b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(30)))
    time.sleep(0.005)
    s.close()


def garbage(a):
    s = socket.create_connection(a, timeout=5)
    s.sendall(os.urandom(random.randint(1, 5000)))
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()


def dropped_ws(a):
    s = socket.create_connection(a, timeout=5)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
              b"\x81\x85\x01\x02\x03\x04" + bytes(c ^ k for c, k in zip(b"hello", b"\x01\x02\x03\x04\x01")))
    try:
        s.recv(1000)
    except OSError:
        pass
    rst_close(s)


def slow_then_gone(a):
    s = socket.create_connection(a, timeout=5)
    s.sendall(b"GET /slow?rate=100000&n=1000000 HTTP/1.1\r\nHost: a\r\n\r\n")
    s.recv(1000)
    s.close()


def chunked_then_gone(a):
    s = socket.create_connection(a, timeout=5)
    s.sendall(b"POST /echo-body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"1000\r\n" + b"z" * 2000)
    rst_close(s)


ACTIONS = [half_head, half_body, reset_mid_response, unread_pipeline, garbage, dropped_ws,
           slow_then_gone, chunked_then_gone]


def active(gw):
    text = t.http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()
    return sum(int(m.group(1)) for m in
               re.finditer(r"^serval_connections_active\{[^}]*\} (\d+)", text, re.M))


def main():
    random.seed(7)
    socket.setdefaulttimeout(10)
    e = t.start_echo(pod="pod-a")
    addr = t.unique_addr()
    port = t.free_port(addr)
    gw = t.start_gateway(["--workers", "2", "--listen", f"{addr}:{port}",
                          "--route", f"/={e.addr}:{e.port}"], wait=(addr, port))
    a = (addr, port)
    errors = []
    done = [0]

    def runner(seed):
        rnd = random.Random(seed)
        for _ in range(40):
            fn = rnd.choice(ACTIONS)
            try:
                fn(a)
                done[0] += 1
            except (ConnectionError, socket.timeout, BrokenPipeError):
                done[0] += 1  # the gateway may close first: fine
            except Exception as ex:  # noqa: BLE001
                errors.append(f"{fn.__name__}: {ex!r}")

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    check("chaos: every abrupt client ran", done[0] == 320 and not errors, (done[0], errors[:3]))
    r = t.http_request(addr, port, "GET", "/after-chaos")
    check("chaos: gateway still answers", r.status == 200 and
          r.json()["path"] == "/after-chaos", r)
    blob = os.urandom(2000000)
    r = t.http_request(addr, port, "POST", "/echo-body", body=blob, timeout=30)
    check("chaos: large bodies still byte-exact", r.status == 200 and r.body == blob)
    deadline = time.time() + 15
    n = active(gw)
    while n != 0 and time.time() < deadline:
        time.sleep(0.2)
        n = active(gw)
    check("chaos: every client connection released", n == 0, n)
    rc = t.stop(gw)
    check("chaos: clean exit (ASan: no leak, no use-after-free)", rc == 0 and gw.returncode == 0,
          gw.returncode)
    t.finish()


if __name__ == "__main__":
    main()
