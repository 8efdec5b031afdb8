#!/usr/bin/env python3
"""TLS passthrough (TLSRoute data plane, quick mode `--listen tls-passthrough:ADDR:PORT`): the
gateway routes by the ClientHello SNI and relays the bytes untouched, so the client completes
its handshake with the backend's own certificate. Two SNIs reach two TLS backends (Python ssl
servers with their own self-signed certificates); an unknown SNI, a ClientHello without SNI,
a backend that refuses the connection and a cleartext HTTP request are closed; a ClientHello sent one byte at a time still works."""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from svtest import check  # noqa: E402


def make_cert(d, name):
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:" + name, "-keyout", key, "-out", crt],
                   check=True, capture_output=True, timeout=30)
    return crt, key


def tls_backend(crt, key, tag):
    """A TLS server answering every line with '<tag> <line>'. Returns (addr, port, stop)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    addr = t.unique_addr()
    srv = socket.socket()
    srv.bind((addr, 0))
    srv.listen(16)
    srv.settimeout(0.2)
    done = threading.Event()

    def one(c):
        try:
            c.settimeout(5)
            with ctx.wrap_socket(c, server_side=True) as s:
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                s.sendall(tag.encode() + b" " + buf)
        except (OSError, ssl.SSLError):
            pass

    def serve():
        while not done.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=one, args=(c,), daemon=True).start()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return addr, srv.getsockname()[1], done.set


def client(gw, sni, cafile, msg=b"hello\n", dribble=False, check_name=True):
    """TLS through the gateway; returns (peer certificate CN, answer). With <cafile> the
    backend's certificate must verify against it (and match <sni> when <check_name>)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.check_hostname = check_name
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(gw, timeout=5)
    if dribble:
        # send the ClientHello one byte at a time through a memory BIO handshake
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname=sni)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        for i in range(len(hello)):
            raw.sendall(hello[i:i + 1])
        while True:
            data = raw.recv(65536)
            if not data:
                raise ConnectionError("closed during handshake")
            inc.write(data)
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = out.read()
                if pending:
                    raw.sendall(pending)
        pending = out.read()
        if pending:
            raw.sendall(pending)
        obj.write(msg)
        raw.sendall(out.read())
        ans = b""
        while not ans.endswith(b"\n"):
            data = raw.recv(65536)
            if not data:
                break
            inc.write(data)
            try:
                ans += obj.read(65536)
            except ssl.SSLWantReadError:
                continue
        cert = obj.getpeercert()
        raw.close()
    else:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.sendall(msg)
            ans = b""
            while not ans.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                ans += chunk
            cert = s.getpeercert()
    cn = dict(x[0] for x in cert["subject"])["commonName"] if cert else None
    return cn, ans


def closed_without_answer(gw, data):
    """Send <data>; True when the gateway closes the connection without sending anything."""
    s = socket.create_connection(gw, timeout=5)
    try:
        s.sendall(data)
        return s.recv(65536) == b""
    except ConnectionResetError:
        return True
    finally:
        s.close()


def main():
    with tempfile.TemporaryDirectory() as d:
        a_crt, a_key = make_cert(d, "a.pass.test")
        b_crt, b_key = make_cert(d, "b.pass.test")
        aa, ap, stop_a = tls_backend(a_crt, a_key, "backend-a")
        ba, bp, stop_b = tls_backend(b_crt, b_key, "backend-b")
        down = t.unique_addr()  # nothing listens there: connections are refused
        gw_addr = t.unique_addr()
        gw = (gw_addr, t.free_port(gw_addr))
        g = t.start_gateway(["--listen", f"tls-passthrough:{gw[0]}:{gw[1]}",
                             "--route", f"a.pass.test/={aa}:{ap}",
                             "--route", f"*.wild.test/={ba}:{bp}",
                             "--route", f"down.test/={down}:{t.free_port(down)}"], wait=gw)
        try:
            cn, ans = client(gw, "a.pass.test", a_crt)
            check("passthrough: SNI a.pass.test reaches backend a with its own certificate",
                  cn == "a.pass.test" and ans == b"backend-a hello\n", f"{cn} {ans!r}")
            cn, ans = client(gw, "x.wild.test", b_crt, check_name=False)
            check("passthrough: wildcard SNI reaches backend b untouched",
                  cn == "b.pass.test" and ans == b"backend-b hello\n", f"{cn} {ans!r}")
            big = b"y" * 200000 + b"\n"
            cn, ans = client(gw, "A.Pass.Test", a_crt, msg=big)
            check("passthrough: 200 kB both ways, SNI case ignored",
                  ans == b"backend-a " + big, f"{len(ans)}")
            try:
                cn, ans = client(gw, "a.pass.test", a_crt, dribble=True)
                ok = cn == "a.pass.test" and ans == b"backend-a hello\n"
            except (OSError, ssl.SSLError) as ex:
                ok, ans = False, repr(ex)
            check("passthrough: ClientHello one byte at a time", ok, repr(ans))
            for sni in ("unknown.test", None, "down.test"):
                try:
                    client(gw, sni, None)
                    ok = False
                except (OSError, ssl.SSLError):
                    ok = True
                check(f"passthrough: SNI {sni} is closed", ok)
            check("passthrough: cleartext HTTP is closed without an answer",
                  closed_without_answer(gw, b"GET / HTTP/1.1\r\nHost: a.pass.test\r\n\r\n"))
            cn, ans = client(gw, "a.pass.test", a_crt)
            check("passthrough: still serving after the refusals", ans == b"backend-a hello\n")
        finally:
            rc = t.stop(g)
            check("passthrough: clean exit (ASan: no leak)", rc == 0, t.read_log(g)[-2000:])
            stop_a()
            stop_b()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
