#!/usr/bin/env python3
"""More concurrent responses than one worker's provided-buffer ring can hold (300 downloads of
600 KB whose clients read nothing at first, 1 worker, --recv-buffers 64, at most 8 per
direction; a small ring makes running dry certain: with the default 1024 buffers it depended on
how far the kernel's send-buffer autotuning absorbed the responses, and failed on loaded machines):
the ring runs dry, multishot receives stop with ENOBUFS (counted as backpressure, not errors)
and resume as buffers come back; every download must still arrive byte-exact."""
import os
import re
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from svtest import check  # noqa: E402

N, SIZE = 300, 600000


def waits(gw):
    text = t.http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()
    return sum(int(m.group(1)) for m in
               re.finditer(r"^serval_recv_buffer_waits_total\{[^}]*\} (\d+)", text, re.M))


def main():
    e = t.start_echo(pod="pod-a")
    addr = t.unique_addr()
    port = t.free_port(addr)
    gw = t.start_gateway(["--workers", "1", "--recv-buffers", "64", "--listen", f"{addr}:{port}",
                          "--route", f"/={e.addr}:{e.port}"], wait=(addr, port))
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(N):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.settimeout(10)
        s.connect((addr, port))
        s.sendall(f"GET /bytes/{SIZE} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, i)
    # Nobody reads until the gateway's buffer ring has run dry (or 20 s passed).
    deadline = time.time() + 20
    while time.time() < deadline and waits(gw) == 0:
        time.sleep(0.2)
    got = [bytearray() for _ in range(N)]
    done = 0
    deadline = time.time() + 90
    while done < N and time.time() < deadline:
        for key, _ in sel.select(1):
            i = key.data
            try:
                b = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                b = b""
            got[i] += b
            head, sep, body = bytes(got[i]).partition(b"\r\n\r\n")
            if not b or (sep and len(body) >= SIZE):
                sel.unregister(key.fileobj)
                done += 1
    exp = t.pattern_bytes(SIZE)
    ok = sum(1 for g in got if bytes(g).partition(b"\r\n\r\n")[2] == exp)
    for s in socks:
        s.close()
    n_waits = waits(gw)
    check("enobufs: all 300 downloads complete", done == N, done)
    check("enobufs: all byte-exact", ok == N, ok)
    check("enobufs: the buffer ring did run dry (ENOBUFS backpressure exercised)", n_waits > 0,
          n_waits)
    r = t.http_request(addr, port, "GET", "/after")
    check("enobufs: gateway serves normally afterwards", r.status == 200, r)
    rc = t.stop(gw)
    check("enobufs: clean exit", rc == 0 and gw.returncode == 0, gw.returncode)
    t.finish()


if __name__ == "__main__":
    main()
