#!/usr/bin/env python3
"""TLS to backends (BackendTLSPolicy) through the real binary in folder mode, against
serval-echo --tls-listen (certificate for b.test from the test CA, client certificates verified
against the CA when given):
  - hostname b.test with the CA -> 200, the echo saw SNI b.test and the Gateway's client
    certificate (spec.tls.backend.clientCertificateRef);
  - a CA that did not sign the backend's certificate -> 502; a hostname the certificate does not
    carry -> 502; both counted in upstream_tls_failures_total;
  - subjectAltNames: a listed DNS SAN the certificate carries -> 200 with SNI = the hostname; a
    list without it -> 502;
  - a Service without a policy on the same TLS endpoint never gets a pooled TLS connection (and
    answers 502: cleartext to a TLS port); the TLS one never gets a cleartext one;
  - keep-alive reuse: five requests on one client connection make one handshake and four reuses;
  - request bodies (16 KiB, chunked) and a 3 MiB response go through TLS upstreams intact, also
    with a gateway of 16 receive buffers per worker (plaintext room comes back as the response is
    consumed);
  - several CA references make one trust bundle (the first one does not sign the backend);
  - wellKnownCACertificates: System loads the system bundle (the policy is usable: 502 for the
    test CA's backend, not the 500 of an unusable policy);
  - a backend that accepts TCP but never answers the handshake: 504 after --upstream-timeout;
  - a WebSocket tunnel through a TLS upstream (text and a 300 KB binary frame echoed);
  - RequestMirror to a TLS backend: the copy (with a 20 KB body) arrives over TLS.
Certificates come from tests/tls/gen-certs.sh."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import pem_scalar  # noqa: E402
from svtest import (Client, TcpServer, WebSocket, check, echo_stats, finish,  # noqa: E402
                    free_port, http_request, pattern_bytes, start_echo, start_gateway, stop, unique_addr,
                    wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HEAD = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: serval}}
spec: {{controllerName: serval.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: demo}}
spec:
  gatewayClassName: serval
  tls:
    backend:
      clientCertificateRef: {{name: client-cert}}
  listeners:
  - {{name: http, port: {port}, protocol: HTTP}}
---
apiVersion: v1
kind: Secret
metadata: {{name: client-cert, namespace: demo}}
type: kubernetes.io/tls
stringData:
  tls.crt: {ccrt}
  tls.key: {ckey}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: ca, namespace: demo}}
data:
  ca.crt: {ca}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: stranger-ca, namespace: demo}}
data:
  ca.crt: {stranger}
"""

# one Service (and route path) per case, all on the echo's TLS port unless noted
SERVICE = """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: demo}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /{name}}}}}]
    backendRefs: [{{name: {name}, port: 443}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: demo}}
spec:
  ports: [{{name: https, port: 443, targetPort: {eport}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: demo
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: https, port: {eport}}}]
endpoints:
- addresses: ["{eaddr}"]
  conditions: {{ready: true}}
"""

POLICY = """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: {name}, namespace: demo}}
spec:
  targetRefs: [{{group: "", kind: Service, name: {name}}}]
  validation:
{validation}    hostname: {hostname}
{sans}"""


MIRROR_ROUTE = """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mirrored, namespace: demo}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /mirrored}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror, port: 443}}
    backendRefs: [{name: good, port: 443}]
"""


def first_pem(path):
    with open(path) as f:
        text = f.read()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return text[:end].strip()


def metric(gw, name):
    text = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()
    return sum(int(m.group(1)) for m in
               re.finditer(r"^serval_" + name + r"\{[^}]*\} (\d+)", text, re.M))


def tls_of(r):
    try:
        return (json.loads(r.body or b"{}").get("tls")) or {}
    except ValueError:
        return {}


def main():
    if not shutil.which("openssl"):
        print("skip - upstream tls: openssl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-utls-")
    gw = e = m = silent = None
    try:
        certs = os.path.join(d, "certs")
        subprocess.run([os.path.join(ROOT, "tests/tls/gen-certs.sh"), certs], check=True,
                       timeout=60)
        c = lambda n: os.path.join(certs, n)  # noqa: E731
        addr = unique_addr()
        tport = free_port(addr)
        e = start_echo(addr=addr, pod="tls-pod",
                       args=["--tls-listen", f"{addr}:{tport}", "--tls-client-ca", c("ca.crt")],
                       env={"TLS_SERVER_CERT": c("ec_b.crt"), "TLS_SERVER_PRIVKEY": c("ec_b.key")})
        m_addr = unique_addr()
        m_tport = free_port(m_addr)
        m = start_echo(addr=m_addr, pod="mirror-pod",
                       args=["--tls-listen", f"{m_addr}:{m_tport}"],
                       env={"TLS_SERVER_CERT": c("ec_b.crt"), "TLS_SERVER_PRIVKEY": c("ec_b.key")})
        silent_addr = unique_addr()
        silent = TcpServer(lambda sock, _peer: time.sleep(6), addr=silent_addr)
        host = unique_addr()
        port = free_port(host)
        doc = HEAD.format(port=port, ccrt=pem_scalar(certs, "ec_a.crt"),
                          ckey=pem_scalar(certs, "ec_a.key"), ca=pem_scalar(certs, "ca.crt"),
                          stranger=pem_scalar(certs, "stranger.crt"))
        cases = [  # name, CA ConfigMap, hostname, SAN list
            ("good", "ca", "b.test", None),
            ("reuse", "ca", "b.test", None),
            ("badca", "stranger-ca", "b.test", None),
            ("badhost", "ca", "a.example.com", None),
            ("san", "ca", "x.test", ["b.test", "other.test"]),
            ("sanbad", "ca", "b.test", ["nope.test"]),
            ("echo-body", "ca", "b.test", None),
            ("bytes", "ca", "b.test", None),
            ("twoca", "stranger-ca,ca", "b.test", None),
            ("system", "System", "b.test", None),
            ("silent", "ca", "b.test", None),
            ("ws", "ca", "b.test", None),
        ]
        for name, ca, hostname, sans in cases:
            if name == "silent":
                doc += SERVICE.format(name=name, eport=silent.port, eaddr=silent_addr)
            else:
                doc += SERVICE.format(name=name, eport=tport, eaddr=addr)
            san_yaml = ""
            if sans:
                san_yaml = "    subjectAltNames:\n" + "".join(
                    f"    - {{type: Hostname, hostname: {s}}}\n" for s in sans)
            if ca == "System":
                val = "    wellKnownCACertificates: System\n"
            else:
                val = "    caCertificateRefs: [" + ", ".join(
                    f'{{group: "", kind: ConfigMap, name: {x}}}' for x in ca.split(",")) + "]\n"
            doc += POLICY.format(name=name, validation=val, hostname=hostname, sans=san_yaml)
        doc += SERVICE.format(name="plain", eport=tport, eaddr=addr)  # no policy, TLS port
        # RequestMirror to a second TLS echo under a policy; the primary is the first one
        doc += SERVICE.format(name="mirror", eport=m_tport, eaddr=m.addr)
        doc += POLICY.format(name="mirror", hostname="b.test", sans="",
                             validation='    caCertificateRefs: [{group: "", kind: ConfigMap, '
                                        'name: ca}]\n')
        doc += MIRROR_ROUTE
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(doc)
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "2",
                            "--upstream-timeout", "1s"])
        check("upstream tls: listener up", wait_port(host, port, 10.0))

        def get(path, **kw):
            return http_request(host, port, "GET", path, headers={"Host": "app.test"},
                                timeout=10.0, **kw)

        cfg = json.loads(http_request(gw.admin[0], gw.admin[1], "GET", "/config").body or b"{}")
        sets = {x.get("name"): x for x in (cfg.get("routing") or {}).get("backendSets") or []}
        check("upstream tls: /config marks the TLS backend set, not the cleartext one",
              (sets.get("demo/good:443") or {}).get("tls") is True and
              "tls" not in (sets.get("demo/plain:443") or {"tls": 1}), list(sets)[:4])

        # keep-alive reuse first, while no upstream connection exists anywhere
        hs0, re0 = metric(gw, "upstream_tls_handshakes_total"), metric(gw, "upstream_reuses_total")
        statuses = []
        with Client(host, port, timeout=10.0) as cl:
            for i in range(5):
                r = cl.request("GET", f"/reuse/{i}", headers={"Host": "app.test"})
                statuses.append((r.status, tls_of(r).get("serverName")))
        hs1, re1 = metric(gw, "upstream_tls_handshakes_total"), metric(gw, "upstream_reuses_total")
        check("upstream tls: five requests on one connection -> 200 over TLS",
              statuses == [(200, "b.test")] * 5, statuses)
        check("upstream tls: one handshake, four reuses", hs1 - hs0 == 1 and re1 - re0 >= 4,
              (hs1 - hs0, re1 - re0))

        r = get("/good")
        t = tls_of(r)
        check("upstream tls: CA + hostname -> 200", r.status == 200, (r.status, r.body[:300]))
        check("upstream tls: the backend saw SNI = the policy hostname",
              t.get("serverName") == "b.test", t)
        check("upstream tls: TLS 1.3 with the backend", t.get("version") == "TLSv1.3", t)
        peers = [p.strip() for p in t.get("peerCertificates") or []]
        check("upstream tls: the Gateway's client certificate was presented",
              peers == [first_pem(c("ec_a.crt"))], peers[:1])

        f0 = metric(gw, "upstream_tls_failures_total")
        r = get("/badca")
        check("upstream tls: CA that did not sign the backend -> 502", r.status == 502, r.status)
        r = get("/badhost")
        check("upstream tls: hostname not in the certificate -> 502", r.status == 502, r.status)
        f1 = metric(gw, "upstream_tls_failures_total")
        check("upstream tls: failures counted", f1 - f0 >= 2, (f0, f1))

        r = get("/san")
        t = tls_of(r)
        check("upstream tls: a listed SAN matches -> 200, SNI is the hostname",
              r.status == 200 and t.get("serverName") == "x.test", (r.status, t))
        r = get("/sanbad")
        check("upstream tls: no listed SAN matches -> 502", r.status == 502, r.status)

        # same endpoint, no policy: cleartext to the TLS port, never a pooled TLS connection
        with Client(host, port, timeout=10.0) as cl:
            a = cl.request("GET", "/good/1", headers={"Host": "app.test"})
            b = cl.request("GET", "/plain/1", headers={"Host": "app.test", "Connection": "close"})
        check("upstream tls: a pooled TLS connection never serves a cleartext backend",
              a.status == 200 and b.status == 502, (a.status, b.status, b.body[:200]))

        # request bodies (fixed length and chunked) and a large response through TLS upstreams
        body = bytes(range(256)) * 64
        r = http_request(host, port, "POST", "/echo-body", headers={"Host": "app.test"},
                         body=body, timeout=10.0)
        check("upstream tls: 16 KiB request body echoed intact", r.status == 200 and
              r.body == body, (r.status, len(r.body or b"")))
        with Client(host, port, timeout=10.0) as cl:
            pieces = [b"a" * 3000, b"b" * 5000, b"c" * 7]
            r = cl.request("POST", "/echo-body", headers={"Host": "app.test"}, chunks=pieces)
        check("upstream tls: chunked request body echoed intact",
              r.status == 200 and r.body == b"".join(pieces), (r.status, len(r.body or b"")))
        n = 3 * 1024 * 1024 + 17
        r = get(f"/bytes/{n}")
        check("upstream tls: 3 MiB response arrives intact",
              r.status == 200 and r.body == pattern_bytes(n), (r.status, len(r.body or b"")))

        r = get("/twoca")
        check("upstream tls: two CA references, the second signs the backend -> 200",
              r.status == 200, r.status)
        r = get("/system")
        check("upstream tls: System CAs load; the test CA is not among them -> 502",
              r.status == 502, r.status)
        t0 = time.time()
        r = get("/silent")
        took = time.time() - t0
        check("upstream tls: no handshake answer -> 504 (upstream timeout)", r.status == 504,
              (r.status, round(took, 1)))

        # RequestMirror to a TLS backend: the copy goes out over its own TLS connection
        before = echo_stats(m.addr, m.port)["requests"]
        d0 = metric(gw, "mirrors_dropped_total")
        mbody = b"m" * 20000
        r = http_request(host, port, "POST", "/mirrored/x", headers={"Host": "app.test"},
                         body=mbody, timeout=10.0)
        got = 0
        for _ in range(50):
            got = echo_stats(m.addr, m.port)["requests"] - before
            if got:
                break
            time.sleep(0.1)
        check("upstream tls: mirrored request -> primary 200 over TLS, the copy reached the TLS "
              "mirror backend", r.status == 200 and tls_of(r).get("serverName") == "b.test" and
              got == 1, (r.status, got))
        check("upstream tls: no mirror copy dropped", metric(gw, "mirrors_dropped_total") == d0,
              metric(gw, "mirrors_dropped_total") - d0)

        # WebSocket through a TLS upstream: the tunnel encrypts and decrypts both ways
        ws = WebSocket(host, port, "/ws", headers={"Host": "app.test"}, timeout=10.0)
        check("upstream tls: WebSocket 101 with the backend's accept key",
              ws.response.status == 101 and
              ws.response.header("sec-websocket-accept") == ws.expected_accept(), ws.response)
        ws.send(0x1, b"hello over TLS")
        check("upstream tls: WebSocket text echoed", ws.recv() == (0x1, b"hello over TLS"))
        blob = os.urandom(300000)
        ws.send(0x2, blob)
        check("upstream tls: WebSocket 300 KB binary echoed", ws.recv() == (0x2, blob))
        ws.close()

        # a gateway with 16 receive buffers per worker: large bodies both ways still arrive
        stop(gw)
        gw = None
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1",
                            "--recv-buffers", "16"])
        check("upstream tls: small-buffer gateway up", wait_port(host, port, 10.0))
        r = get(f"/bytes/{n}")
        check("upstream tls: 16 buffers: 3 MiB response intact",
              r.status == 200 and r.body == pattern_bytes(n), (r.status, len(r.body or b"")))
        big = bytes(range(251)) * 1000
        r = http_request(host, port, "POST", "/echo-body", headers={"Host": "app.test"},
                         body=big, timeout=10.0)
        check("upstream tls: 16 buffers: 245 KiB request body echoed intact",
              r.status == 200 and r.body == big, (r.status, len(r.body or b"")))
    finally:
        if gw is not None:
            stop(gw)
        if e is not None:
            stop(e)
        if m is not None:
            stop(m)
        if silent is not None:
            silent.close()
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
