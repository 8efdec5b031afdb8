#!/usr/bin/python3
"""serval-echo --tls-listen: HTTPS with the same endpoints, and the "tls" object of the echo JSON
the conformance checks read (serverName = the client's SNI, version, peerCertificates = the
client certificate in PEM when one was given and verified against --tls-client-ca)."""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import gen_certs  # noqa: E402
from svtest import (binary, check, finish, free_port, parse_response, start_echo,  # noqa: E402
                    stop, unique_addr)

HERE = os.path.dirname(os.path.abspath(__file__))


def tls_get(host, port, sni, ca, cert=None, key=None, path="/tls-check"):
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    with socket.create_connection((host, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
    return parse_response(data)


def pipelined(host, port, ca, n, timeout=10.0):
    """Send <n> GETs /pipe/0.. in one write over TLS; returns how many 200 responses came back
    before the connection went quiet for <timeout> s, and whether the last one was for the last
    request."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.example.com") as s:
            s.sendall(b"".join(b"GET /pipe/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i
                               for i in range(n)))
            data, got = b"", 0
            try:
                while got < n:
                    b = s.recv(65536)
                    if not b:
                        break
                    got += (data[-12:] + b).count(b"HTTP/1.1 200 ")
                    data = data[-65536:] + b
            except socket.timeout:
                pass
    return got, b'"/pipe/%d"' % (n - 1) in data


def first_pem(path):
    with open(path) as f:
        text = f.read()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return text[:end].strip()


def main():
    if not shutil.which("openssl"):
        print("skip - echo tls: openssl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-echotls-")
    e = None
    try:
        certs = gen_certs(d)
        c = lambda n: os.path.join(certs, n)  # noqa: E731
        r = subprocess.run([binary("serval-echo"), "--listen", "127.0.0.1:0", "--tls-listen",
                            "127.0.0.1:0"], capture_output=True, timeout=10,
                           env={k: v for k, v in os.environ.items() if not k.startswith("TLS_")})
        check("echo tls: --tls-listen without a certificate is refused", r.returncode == 2,
              r.stderr[-300:])

        addr = unique_addr()
        tport = free_port(addr)
        e = start_echo(addr=addr, pod="tls-pod", ns="infra",
                       args=["--tls-listen", f"{addr}:{tport}", "--tls-client-ca", c("ca.crt"),
                             "--quiet"],  # no log line per request: bursts arrive faster
                       env={"TLS_SERVER_CERT": c("ec_a.crt"), "TLS_SERVER_PRIVKEY": c("ec_a.key")})
        status, headers, body = tls_get(addr, tport, "a.example.com", c("ca.crt"))
        j = json.loads(body or b"{}")
        t = j.get("tls") or {}
        check("echo tls: HTTPS answers the echo JSON", status == 200 and
              j.get("path") == "/tls-check" and j.get("pod") == "tls-pod", (status, body[:300]))
        check("echo tls: serverName is the SNI", t.get("serverName") == "a.example.com", t)
        check("echo tls: version and cipher reported",
              str(t.get("version", "")).startswith("TLSv1.") and t.get("cipherSuite"), t)
        check("echo tls: no client certificate, none reported", t.get("peerCertificates") == [], t)

        status, headers, body = tls_get(addr, tport, "a.example.com", c("ca.crt"),
                                        cert=c("ec_b.crt"), key=c("ec_b.key"))
        t = (json.loads(body or b"{}")).get("tls") or {}
        peers = [p.strip() for p in t.get("peerCertificates") or []]
        check("echo tls: the client certificate is reported as PEM",
              status == 200 and peers == [first_pem(c("ec_b.crt"))], (status, peers[:1]))

        # a client certificate from another CA fails verification
        other = os.path.join(d, "other")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", other + ".key", "-out",
                        other + ".crt", "-subj", "/CN=stranger", "-days", "2"], check=True,
                       capture_output=True, timeout=30)
        try:
            status, _, _ = tls_get(addr, tport, "a.example.com", c("ca.crt"), cert=other + ".crt",
                                   key=other + ".key")
            rejected = False
        except (ssl.SSLError, OSError):
            rejected = True
        check("echo tls: an unverifiable client certificate is rejected", rejected)

        # Pipelined bursts in one write: all answered. 2000 small requests take more than one
        # turn of the connection's loop after the socket is drained (the rest waits in the input
        # buffer or inside wolfSSL, where no epoll event announces it); that used to stall.
        for n in (10, 2000):
            got, last = pipelined(addr, tport, c("ca.crt"), n)
            check(f"echo tls: {n} pipelined requests in one write are all answered",
                  got == n and last, (got, last))

        h = http.client.HTTPConnection(addr, e.port, timeout=5)
        h.request("GET", "/plain")
        resp = h.getresponse()
        pj = json.loads(resp.read())
        check("echo tls: the plain listener has no tls object", resp.status == 200 and
              "tls" not in pj, pj)
    finally:
        if e:
            stop(e)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
