#!/usr/bin/env python3
"""h2c prior knowledge, a preface that arrives a few bytes per TCP segment (real binary, folder
mode, one worker with 16 receive buffers, --header-timeout 20s):
  - four connections trickling the first 10 bytes of the preface one byte per segment do not
    hold the worker's receive ring: an ordinary HTTP/1.1 request on another connection is
    answered at once (a connection waiting for the rest of the preface keeps one buffer, not one
    per segment; before, the trickles dried the ring until the header timeout);
  - a preface sent one byte per segment in full (24 segments, more than the 8 buffers a
    connection may hold) still starts HTTP/2: the gateway answers with its SETTINGS frame
    (before, the connection paused at 8 buffers and never read the rest)."""
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import backend, docs, gateway, gateway_class, http_route  # noqa: E402
from svtest import (check, finish, free_port, http_request, start_echo,  # noqa: E402
                    start_gateway, stop, unique_addr, wait_port)

def manifests(port, eport, eaddr):
    """One HTTP listener on <port>, one route to Service svc at <eaddr>:<eport>."""
    return docs(gateway_class(), gateway(port), http_route("[{backendRefs: [{name: svc, port: 80}]}]"), backend("svc", eaddr, eport))

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def trickle(socks, data):
    """Send <data> one byte per segment on every socket in <socks>."""
    for k in range(len(data)):
        for s in socks:
            s.send(data[k:k + 1])
        time.sleep(0.02)


def read_frame_head(s, timeout):
    """The first HTTP/2 frame header (9 bytes) the gateway sends, or what arrived instead."""
    s.settimeout(timeout)
    got = b""
    try:
        while len(got) < 9:
            d = s.recv(9 - len(got))
            if not d:
                break
            got += d
    except OSError:
        pass
    return got


def main():
    d = tempfile.mkdtemp(prefix="sv-h2c-trickle-")
    gw = e = None
    socks = []
    try:
        e = start_echo(addr=unique_addr(), pod="trickle")
        host = unique_addr()
        port = free_port(host)
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(manifests(port, e.port, e.addr))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1",
                            "--recv-buffers", "16", "--header-timeout", "20s"])
        check("h2c trickle: listener up", wait_port(host, port, 10.0))

        for _ in range(4):
            s = socket.create_connection((host, port), timeout=10.0)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        trickle(socks, PREFACE[:10])
        time.sleep(0.2)
        try:
            r = http_request(host, port, "GET", "/other", timeout=8.0)
            res = r.status
        except OSError as ex:  # timed out: the ring was dry
            res = ex
        check("h2c trickle: four connections trickling a preface leave the ring usable "
              "(another request answered)", res == 200, res)

        # one of them finishes its preface byte by byte and speaks HTTP/2
        s = socks[0]
        trickle([s], PREFACE[10:])
        s.send(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS
        head = read_frame_head(s, 8.0)
        check("h2c trickle: a preface sent one byte per segment starts HTTP/2 (SETTINGS back)",
              len(head) == 9 and head[3] == 0x4 and head[4] & 1 == 0, head)
    finally:
        for s in socks:
            s.close()
        if gw is not None:
            stop(gw)
        if e is not None:
            stop(e)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
