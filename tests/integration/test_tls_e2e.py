#!/usr/bin/env python3
"""HTTPS end to end in folder mode: the workers terminate TLS. SNI selects the listener and its
certificate (exact, wildcard, none -> the hostname-less listener), ALPN http/1.1, TLS 1.2 and 1.3,
a 5 MB body both ways, keep-alive, session resumption with a ticket, 421 when the Host selects
another listener than the SNI, X-Forwarded-Proto/Port seen by the backend, a handshake that sends
nothing or garbage is cut off while other connections go on, and plain HTTP still works on an
HTTP bind. Certificates come from tests/tls/gen-certs.sh; clients are curl and openssl."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import (backend, docs, gateway, gateway_class, http_listener,  # noqa: E402
                       gen_certs, http_route, sni_listeners, sni_secrets)
from svtest import (check, finish, free_port, http_request, pattern_bytes,  # noqa: E402
                    start_echo, start_gateway, stop, unique_addr, wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def manifests(port, hport, e):
    """The SNI listeners on <port>, plain HTTP on <hport>, one route to the echo backend <e>."""
    return docs(gateway_class(),
                gateway(listeners=sni_listeners(port) + http_listener(hport, "plain")),
                http_route("[{matches: [{path: {value: /}}], backendRefs: [{name: svc, port: 80}]}]"),
                backend("svc", e.addr, e.port))


def curl(host, port, name, path, extra=(), timeout=60):
    """curl https://<name>:<port><path> resolved to <host>; returns (rc, stdout bytes, stderr)."""
    argv = ["curl", "-sS", "-v", "--max-time", str(timeout - 5),
            "--resolve", f"{name}:{port}:{host}", *extra, f"https://{name}:{port}{path}"]
    p = subprocess.run(argv, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def s_client(host, port, args, stdin=b"", timeout=20):
    argv = ["openssl", "s_client", "-connect", f"{host}:{port}", "-ign_eof", *args]
    p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    return p.stdout.decode(errors="replace")


def main():
    if not shutil.which("openssl") or not shutil.which("curl"):
        print("skip - tls e2e: openssl or curl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-tlse2e-")
    gw = None
    try:
        certs = gen_certs(d)
        ca = os.path.join(certs, "ca.crt")
        e = start_echo(pod="pod-tls")
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        port = free_port(host)
        hport = free_port(host)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(manifests(port, hport, e))
        with open(os.path.join(conf, "secrets.yaml"), "w") as f:
            f.write(sni_secrets(certs))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "2",
                            "--header-timeout", "1s"])
        up = wait_port(host, port, 10.0) and wait_port(host, hport, 10.0)
        check("tls e2e: HTTPS and HTTP ports listen", up)

        # SNI exact: the a.example.com certificate verifies against the test CA.
        rc, out, err = curl(host, port, "a.example.com", "/x?y=1", ["--cacert", ca])
        j = json.loads(out) if rc == 0 and out.startswith(b"{") else {}
        check("tls e2e: SNI exact -> 200 through the proxy", j.get("path") == "/x?y=1",
              (rc, out[:200], err[-600:]))
        h = j.get("headers", {})
        check("tls e2e: X-Forwarded-Proto https seen by the backend",
              h.get("X-Forwarded-Proto") == ["https"], h)
        check("tls e2e: X-Forwarded-Port is the HTTPS port",
              h.get("X-Forwarded-Port") == [str(port)], h)
        check("tls e2e: ALPN http/1.1 accepted (curl)",
              "http/1.1" in err and "accepted" in err.lower(), err[-800:])

        # SNI wildcard.
        rc, out, err = curl(host, port, "x.example.com", "/w", ["--cacert", ca])
        check("tls e2e: SNI wildcard -> 200 with the wildcard certificate",
              rc == 0 and b'"path":"/w"' in out.replace(b" ", b""), (rc, out[:200], err[-600:]))

        # No SNI (IP address): the hostname-less listener's certificate.
        p = subprocess.run(["curl", "-sS", "-k", "--max-time", "15", "-o", "/dev/null", "-w",
                            "%{http_code}", "-H", "Host: default.test",
                            f"https://{host}:{port}/n"], capture_output=True, timeout=20)
        check("tls e2e: no SNI -> the host-less listener answers 200", p.stdout == b"200",
              (p.stdout, p.stderr[-300:]))
        txt = s_client(host, port, ["-noservername"], b"Q\n")
        check("tls e2e: no SNI gets the default certificate", "CN = default.test" in txt
              or "CN=default.test" in txt, txt[:600])

        # ALPN via openssl; TLS 1.2 and 1.3.
        txt = s_client(host, port, ["-servername", "a.example.com", "-alpn", "http/1.1"], b"Q\n")
        check("tls e2e: ALPN protocol http/1.1 (openssl)", "ALPN protocol: http/1.1" in txt,
              txt[-600:])
        rc, out, err = curl(host, port, "a.example.com", "/v12",
                            ["--cacert", ca, "--tlsv1.2", "--tls-max", "1.2"])
        check("tls e2e: TLS 1.2 works", rc == 0 and "TLSv1.2" in err and b"/v12" in out,
              (rc, err[-600:]))
        rc, out, err = curl(host, port, "a.example.com", "/v13", ["--cacert", ca, "--tlsv1.3"])
        check("tls e2e: TLS 1.3 works", rc == 0 and "TLSv1.3" in err and b"/v13" in out,
              (rc, err[-600:]))

        # 5 MB both ways.
        blob = os.urandom(5 * 1024 * 1024 + 13)
        bf = os.path.join(d, "blob")
        with open(bf, "wb") as f:
            f.write(blob)
        rc, out, err = curl(host, port, "a.example.com", "/echo-body",
                            ["--cacert", ca, "--data-binary", "@" + bf, "-H",
                             "Content-Type: application/octet-stream"], timeout=90)
        check("tls e2e: 5 MB request body echoed back intact", rc == 0 and out == blob,
              (rc, len(out), err[-600:]))
        n = 5 * 1024 * 1024 + 7
        rc, out, err = curl(host, port, "a.example.com", f"/bytes/{n}", ["--cacert", ca],
                            timeout=90)
        check("tls e2e: 5 MB response body intact", rc == 0 and out == pattern_bytes(n),
              (rc, len(out), err[-600:]))

        # Keep-alive: two requests, one connection.
        p = subprocess.run(["curl", "-sS", "-v", "--max-time", "20", "--cacert", ca, "--resolve",
                            f"a.example.com:{port}:{host}", f"https://a.example.com:{port}/k1",
                            f"https://a.example.com:{port}/k2"], capture_output=True, timeout=30)
        err = p.stderr.decode(errors="replace")
        check("tls e2e: keep-alive (second request reuses the connection)",
              p.returncode == 0 and b"/k1" in p.stdout and b"/k2" in p.stdout
              and "Re-using existing connection" in err, err[-800:])

        # Session resumption with a ticket.
        sess = os.path.join(d, "sess.pem")
        req = b"GET /r HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n"
        t1 = s_client(host, port, ["-servername", "a.example.com", "-sess_out", sess], req)
        t2 = s_client(host, port, ["-servername", "a.example.com", "-sess_in", sess], req)
        check("tls e2e: first connection answered", "HTTP/1.1 200" in t1, t1[-600:])
        check("tls e2e: session resumed from the ticket", "Reused, TLS" in t2, t2[-800:])

        # 421: SNI a.example.com, Host b.example.com (selects the wildcard listener).
        rc, out, err = curl(host, port, "a.example.com", "/m",
                            ["--cacert", ca, "-H", "Host: b.example.com", "-o", "/dev/null",
                             "-w", "%{http_code}"])
        check("tls e2e: Host selecting another listener than the SNI -> 421", out == b"421",
              (rc, out, err[-400:]))
        rc, out, err = curl(host, port, "b.example.com", "/m",
                            ["--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}"])
        check("tls e2e: matching Host and SNI -> 200", out == b"200", (rc, out, err[-400:]))

        # Handshake timeout: a silent client and a garbage client are cut off; others go on.
        silent = socket.create_connection((host, port), timeout=5.0)
        garbage = socket.create_connection((host, port), timeout=5.0)
        garbage.sendall(b"\x16\x03\x01\x00\x05hello garbage that is no TLS record at all\r\n")
        t0 = time.time()
        rc, out, err = curl(host, port, "a.example.com", "/during", ["--cacert", ca])
        check("tls e2e: other connections unaffected by stalled handshakes",
              rc == 0 and b"/during" in out, (rc, err[-400:]))

        def closed_within(s, limit):
            s.settimeout(limit)
            try:
                for _ in range(64):
                    b = s.recv(4096)
                    if not b:
                        return True
            except socket.timeout:
                return False
            except OSError:
                return True
            return False

        check("tls e2e: garbage handshake closed", closed_within(garbage, 5.0))
        check("tls e2e: silent handshake closed by the header timeout",
              closed_within(silent, 6.0) and time.time() - t0 < 8.0)
        silent.close()
        garbage.close()

        # Plain HTTP on the HTTP bind, and no cleartext answer on the HTTPS port.
        r = http_request(host, hport, "GET", "/plain", headers={"Host": "plain.test"},
                         timeout=5.0)
        check("tls e2e: plain HTTP still works on the HTTP bind",
              r.status == 200 and r.json().get("headers", {}).get("X-Forwarded-Proto")
              == ["http"], r)
        got = b"?"
        try:
            with socket.create_connection((host, port), timeout=5.0) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
                got = b""
                for _ in range(16):
                    b = s.recv(4096)
                    if not b:
                        break
                    got += b
        except OSError:
            pass
        check("tls e2e: cleartext HTTP on the HTTPS port gets no HTTP answer",
              not got.startswith(b"HTTP/"), got[:80])
    finally:
        if gw is not None:
            stop(gw)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
