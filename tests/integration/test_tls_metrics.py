#!/usr/bin/env python3
"""HTTPS listeners in folder mode, control side: certificate Secrets are parsed for real (a
mismatched key/certificate pair -> that listener ResolvedRefs=False InvalidCertificateRef while the
others are programmed), and /metrics counts the served certificates, the expired ones and the
earliest expiry. Certificates come from tests/tls/gen-certs.sh (openssl, test-only)."""
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import (docs, gateway, gateway_class, http_route, https_listener,  # noqa: E402
                       gen_certs, tls_secret)
from svtest import (check, finish, free_port, http_request, start_gateway, stop,  # noqa: E402
                    unique_addr, wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def manifests(port):
    """Listeners a (cert-a, good), old (cert-expired) and broken (cert-broken: key of another
    certificate) on <port>, and a route without backends."""
    listeners = (https_listener(port, "cert-a", "a", "a.example.com")
                 + https_listener(port, "cert-expired", "old", "expired.test")
                 + https_listener(port, "cert-broken", "broken", "broken.test"))
    return docs(gateway_class(), gateway(listeners=listeners),
                http_route("[{matches: [{path: {value: /}}]}]"))


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def listener_conditions(cfg, name):
    for g in cfg.get("status", {}).get("gateways", []):
        for ls in g.get("status", {}).get("listeners", []):
            if ls["name"] == name:
                return {c["type"]: (c["status"], c["reason"]) for c in ls["conditions"]}
    return {}


def main():
    if not shutil.which("openssl"):
        print("skip - tls metrics: openssl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-tls-")
    gw = None
    try:
        certs = gen_certs(d)
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        port = free_port(host)
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(manifests(port))
        with open(os.path.join(conf, "secrets.yaml"), "w") as f:
            f.write(docs(tls_secret("cert-a", certs, "ec_a"),
                         tls_secret("cert-expired", certs, "expired"),
                         tls_secret("cert-broken", certs, "ec_a", key_leaf="ec_wild")))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "1"])

        text = ""
        deadline = time.time() + 10
        while time.time() < deadline:
            r = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics", timeout=3.0)
            text = r.body.decode() if r.status == 200 else ""
            if metric(text, "serval_tls_certificates") == 2:
                break
            time.sleep(0.2)
        check("tls metrics: two certificates served (the mismatched pair is not)",
              metric(text, "serval_tls_certificates") == 2,
              [ln for ln in text.splitlines() if "tls" in ln])
        check("tls metrics: the expired certificate is counted",
              metric(text, "serval_tls_certificates_expired") == 1)
        check("tls metrics: earliest expiry is the expired certificate's notAfter",
              metric(text, "serval_tls_certificate_expiry_min_timestamp_seconds") == 1580515200)
        check("tls metrics: ticket key rotations exported",
              metric(text, "serval_tls_ticket_key_rotations_total") == 0)

        r = http_request(gw.admin[0], gw.admin[1], "GET", "/config", timeout=3.0)
        cfg = json.loads(r.body) if r.status == 200 else {}
        broken = listener_conditions(cfg, "broken")
        check("tls status: mismatched pair -> ResolvedRefs False InvalidCertificateRef",
              broken.get("ResolvedRefs") == ("False", "InvalidCertificateRef"), broken)
        check("tls status: mismatched pair listener not programmed",
              broken.get("Programmed", ("",))[0] == "False", broken)
        good = listener_conditions(cfg, "a")
        check("tls status: good listener ResolvedRefs True and programmed",
              good.get("ResolvedRefs", ("",))[0] == "True"
              and good.get("Programmed", ("",))[0] == "True", good)
        old = listener_conditions(cfg, "old")
        check("tls status: expired certificate still resolves (it is served)",
              old.get("ResolvedRefs", ("",))[0] == "True", old)

        # An HTTPS port never answers cleartext HTTP (at most a TLS alert, then close).
        got = b"HTTP/ (port not listening)"
        if wait_port(host, port, 5.0):
            try:
                with socket.create_connection((host, port), timeout=3.0) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
                    got = s.recv(4096)
            except OSError:
                got = b""
        check("tls: HTTPS port gives no cleartext HTTP answer", not got.startswith(b"HTTP/"),
              got[:80])
    finally:
        if gw is not None:
            stop(gw)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
