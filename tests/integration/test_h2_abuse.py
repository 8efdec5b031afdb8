#!/usr/bin/env python3
"""HTTP/2 abuse and limits, with a small raw HTTP/2 client (Python's ssl with ALPN h2, frames and
HPACK literals written by hand): rapid reset (HEADERS + RST_STREAM in a loop) ends in GOAWAY,
a CONTINUATION flood and a PING flood end the connection, more streams than connection slots are
refused with RST_STREAM REFUSED_STREAM while the others are answered, and after each abuse a
normal request on a new connection is answered (the worker is healthy)."""
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, http_request, start_echo, start_gateway, stop, \
    unique_addr, wait_port  # noqa: E402
from manifests import (backend, docs, gateway, gateway_class, http_route,  # noqa: E402
                       gen_certs, https_listener, tls_secret)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, CONT = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def lit(index, value):
    """HPACK literal without indexing, indexed name (4-bit prefix), raw value (< 127 bytes)."""
    v = value.encode()
    return bytes([index]) + bytes([len(v)]) + v


def req_block(path, authority="h2.test"):
    # :method GET (2), :scheme https (7), :path (4) literal, :authority (1) literal
    return bytes([0x82, 0x87]) + lit(4, path) + lit(1, authority)


class H2:
    def __init__(self, host, port, timeout=10.0):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout)
        self.s = ctx.wrap_socket(raw, server_hostname="h2.test")
        self.alpn = self.s.selected_alpn_protocol()
        self.buf = b""
        self.s.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        self.s.sendall(data)

    def frames(self, until, timeout=10.0):
        """Read frames, calling until(type, flags, sid, payload) -> True to stop. Returns
        'stop', 'closed' or 'timeout'."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            while len(self.buf) >= 9:
                ln = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + ln:
                    break
                ft, fl = self.buf[3], self.buf[4]
                sid = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
                pl = self.buf[9:9 + ln]
                self.buf = self.buf[9 + ln:]
                if ft == SETTINGS and not fl & ACK:
                    try:
                        self.send(frame(SETTINGS, ACK, 0))
                    except OSError:
                        pass
                if until(ft, fl, sid, pl):
                    return "stop"
            try:
                self.s.settimeout(max(0.05, deadline - time.time()))
                b = self.s.recv(65536)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                return "closed"
            if not b:
                return "closed"
            self.buf += b
        return "timeout"

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def metric(gw, name):
    text = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()
    return sum(int(m.group(1)) for m in
               re.finditer(r"^serval_" + name + r"\{[^}]*\} (\d+)", text, re.M))


def healthy(host, port):
    p = subprocess.run(["curl", "-sS", "-k", "--http2", "--max-time", "10", "-o", "/dev/null",
                        "-w", "%{http_code} %{http_version}", f"https://{host}:{port}/ok"],
                       capture_output=True, timeout=20)
    return p.stdout.decode().strip() == "200 2"


def start(d, e, host, port, extra):
    conf = os.path.join(d, "conf-%d" % port)
    os.mkdir(conf)
    with open(os.path.join(conf, "gw.yaml"), "w") as f:
        f.write(docs(gateway_class(), gateway(listeners=https_listener(port, "cert", "s")),
                     http_route("[{backendRefs: [{name: svc, port: 80}]}]"),
                     backend("svc", e.addr, e.port),
                     tls_secret("cert", os.path.join(d, "certs"), "ec_def")))
    gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1", *extra])
    wait_port(host, port, 10.0)
    return gw


def main():
    if not shutil.which("openssl") or not shutil.which("curl"):
        print("skip - h2 abuse: openssl or curl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-h2a-")
    gws = []
    e = None
    try:
        gen_certs(d)
        e = start_echo(pod="pod-h2a")
        host = unique_addr()
        port = free_port(host)
        gws.append(start(d, e, host, port, []))
        check("h2 abuse: gateway answers over h2 first", healthy(host, port))

        # A header list larger than --max-header-size (cheap to send: one 2000-byte field added
        # to the HPACK dynamic table, then referenced 40 times) is answered 431, like HTTP/1.1.
        c = H2(host, port)
        big = b"b" * 2000
        block = bytes([0x82, 0x87]) + lit(4, "/big") + lit(1, "h2.test")
        block += bytes([0x40, 3]) + b"x-h" + bytes([0x7f, 0xd1, 0x0e]) + big  # 0x7f+1873 = 2000
        block += bytes([0x80 | 62]) * 40
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        body = []
        r = c.frames(lambda t, f, s, p: (body.append(p) or bool(f & END_STREAM))
                     if t == DATA and s == 1 else (t in (RST, GOAWAY)), timeout=10)
        check("h2 abuse: header list over --max-header-size -> 431 over h2",
              r == "stop" and b"Request Header Fields Too Large" in b"".join(body), (r, body))
        c.close()

        # Rapid reset: HEADERS + RST_STREAM(CANCEL) for 3000 streams.
        c = H2(host, port)
        check("h2 abuse: raw client negotiated h2", c.alpn == "h2", c.alpn)
        out = b"".join(frame(HEADERS, END_STREAM | END_HEADERS, sid, req_block("/r")) +
                       frame(RST, 0, sid, struct.pack(">I", 8))
                       for sid in range(1, 6001, 2))
        try:
            c.send(out)
        except OSError:
            pass
        got = {}
        r = c.frames(lambda t, f, s, p: got.setdefault("goaway", p) is not None
                     if t == GOAWAY else False, timeout=15)
        err = int.from_bytes(got["goaway"][4:8], "big") if "goaway" in got else None
        # nghttp2's stream reset rate limit answers GOAWAY INTERNAL_ERROR (some versions
        # ENHANCE_YOUR_CALM)
        check("h2 abuse: rapid reset ends in GOAWAY (or close)",
              (r == "stop" and err in (2, 11)) or r == "closed", (r, err))
        c.close()
        check("h2 abuse: healthy after rapid reset", healthy(host, port))

        # CONTINUATION flood: one header block spread over many CONTINUATION frames.
        c = H2(host, port)
        out = frame(HEADERS, 0, 1, bytes([0x82, 0x87]) + lit(4, "/c"))
        out += b"".join(frame(CONT, 0, 1, lit(1, "h2.test")) for _ in range(200))
        try:
            c.send(out)
        except OSError:
            pass
        r = c.frames(lambda t, f, s, p: t == GOAWAY, timeout=15)
        check("h2 abuse: CONTINUATION flood ends the connection", r in ("stop", "closed"), r)
        c.close()
        check("h2 abuse: healthy after CONTINUATION flood", healthy(host, port))

        # PING flood without reading the acks.
        c = H2(host, port)
        ping = frame(PING, 0, 0, b"12345678")
        r = "timeout"
        try:
            for _ in range(40):
                c.send(ping * 500)
        except OSError:
            r = "closed"
        if r != "closed":
            r = c.frames(lambda t, f, s, p: t == GOAWAY, timeout=15)
        check("h2 abuse: PING flood ends the connection", r in ("stop", "closed"), r)
        c.close()
        check("h2 abuse: healthy after PING flood", healthy(host, port))
        errs = metric(gws[0], "h2_connection_errors_total")
        check("h2 abuse: the three abusive connections show in serval_h2_connection_errors_total",
              errs >= 3, errs)

        # More streams than connection slots: --max-conns 8 leaves 7 slots for streams.
        port2 = free_port(host)
        gws.append(start(d, e, host, port2, ["--max-conns", "8"]))
        c = H2(host, port2)
        sids = list(range(1, 41, 2))  # 20 streams, each a slow response
        c.send(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, sid,
                              req_block("/slow?rate=100000&n=1000")) for sid in sids))
        status = {}

        def until(t, f, s, p):
            if t == RST and s in sids:
                status[s] = ("rst", int.from_bytes(p[:4], "big"))
            elif t == HEADERS and s in sids and s not in status:
                status[s] = ("headers", None)
            return len(status) == len(sids)
        r = c.frames(until, timeout=20)
        refused = sum(1 for v in status.values() if v == ("rst", 7))
        answered = sum(1 for v in status.values() if v[0] == "headers")
        check("h2 abuse: streams beyond the connection slots are refused (REFUSED_STREAM), "
              "the others answered", r == "stop" and refused >= 1 and answered >= 1 and
              refused + answered == len(sids), (r, status))
        c.close()
        check("h2 abuse: healthy after refused streams", healthy(host, port2))
        check("h2 abuse: refused streams counted (serval_h2_streams_refused_total)",
              metric(gws[1], "h2_streams_refused_total") == refused,
              (metric(gws[1], "h2_streams_refused_total"), refused))
        for g in gws:
            check("h2 abuse: gateway still running", g.poll() is None)
    finally:
        for g in gws:
            stop(g)
        if e:
            stop(e)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
