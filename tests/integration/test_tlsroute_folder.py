#!/usr/bin/env python3
"""TLSRoute end to end from a --config-dir folder: a Gateway with a TLS Passthrough listener,
two TLSRoutes (exact and wildcard hostnames) to two Services whose endpoints are TLS servers
with their own certificates, an HTTPRoute that the passthrough listener does not allow. Clients
reach each backend by SNI and verify its certificate (the bytes are relayed untouched); an SNI
no TLSRoute serves is closed; deleting a TLSRoute closes its SNI."""
import os
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from svtest import check  # noqa: E402
from manifests import docs, gateway, gateway_class, backend, write_atomic  # noqa: E402
import test_tls_passthrough as tp  # noqa: E402


def tlsroute(name, hostname, svc, ns="demo", gw="gw"):
    return f"""\
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRefs: [{{name: {gw}}}]
  hostnames: ["{hostname}"]
  rules:
  - backendRefs: [{{name: {svc}, port: 80}}]
"""


HTTPROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: not-here, namespace: demo}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: svc-a, port: 80}]
"""


def eventually(fn, timeout=10.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last is True:
                return True
        except (OSError, ssl.SSLError) as ex:
            last = ex
        time.sleep(0.1)
    return last


def main():
    with tempfile.TemporaryDirectory() as d:
        a_crt, a_key = tp.make_cert(d, "a.route.test")
        b_crt, b_key = tp.make_cert(d, "b.route.test")
        aa, ap, stop_a = tp.tls_backend(a_crt, a_key, "backend-a")
        ba, bp, stop_b = tp.tls_backend(b_crt, b_key, "backend-b")
        host = t.unique_addr()
        port = t.free_port(host)
        cfg = os.path.join(d, "cfg")
        os.mkdir(cfg)
        listener = (f"  - name: tls\n    port: {port}\n    protocol: TLS\n"
                    f"    tls: {{mode: Passthrough}}\n")
        write_atomic(cfg, "gw.yaml", docs(gateway_class(), gateway(listeners=listener),
                                          backend("svc-a", aa, ap), backend("svc-b", ba, bp),
                                          HTTPROUTE))
        write_atomic(cfg, "a.yaml", tlsroute("route-a", "a.route.test", "svc-a"))
        write_atomic(cfg, "b.yaml", tlsroute("route-b", "*.wild.test", "svc-b"))
        gw = t.start_gateway(["--config-dir", cfg, "--bind", host], wait=(host, port))
        try:
            ep = (host, port)
            ok = eventually(lambda: tp.client(ep, "a.route.test", a_crt)
                            == ("a.route.test", b"backend-a hello\n"))
            check("tlsroute: SNI a.route.test reaches svc-a with its own certificate", ok is True,
                  repr(ok))
            ok = eventually(lambda: tp.client(ep, "x.wild.test", b_crt, check_name=False)
                            == ("b.route.test", b"backend-b hello\n"))
            check("tlsroute: wildcard hostname reaches svc-b", ok is True, repr(ok))
            try:
                tp.client(ep, "other.test", None)
                closed = False
            except (OSError, ssl.SSLError):
                closed = True
            check("tlsroute: an SNI without a TLSRoute is closed", closed)
            check("tlsroute: a cleartext HTTP request (the HTTPRoute is not allowed) is closed",
                  tp.closed_without_answer(ep, b"GET / HTTP/1.1\r\nHost: a.route.test\r\n\r\n"))
            os.unlink(os.path.join(cfg, "a.yaml"))

            def gone():
                tp.client(ep, "a.route.test", a_crt)
                return False

            ok = eventually(gone)
            check("tlsroute: deleting the TLSRoute closes its SNI",
                  isinstance(ok, (OSError, ssl.SSLError)), repr(ok))
        finally:
            rc = t.stop(gw)
            check("tlsroute: clean exit (ASan: no leak)", rc == 0, t.read_log(gw)[-2000:])
            stop_a()
            stop_b()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
