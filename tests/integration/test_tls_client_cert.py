#!/usr/bin/env python3
"""Client certificate validation (Gateway spec.tls.frontend) end to end in folder mode: the
default validation (AllowValidOnly) lets in a client whose certificate chains to the CA of the
ConfigMap and refuses one without a certificate or with a certificate of another CA (TLS 1.2 and
1.3); a perPort AllowInsecureFallback port asks for a certificate but lets everyone in; a perPort
entry naming a missing ConfigMap keeps its listener closed; plain HTTP is untouched; replacing
the ConfigMap's CA takes effect for new connections. Certificates come from
tests/tls/gen-certs.sh; clients are curl and openssl."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import (backend, config_map, docs, gateway, gateway_class,  # noqa: E402
                       gen_certs, http_listener, http_route, https_listener, read_text,
                       tls_secret)
from svtest import (check, finish, free_port, http_request, start_echo,  # noqa: E402
                    start_gateway, stop, unique_addr, wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FRONTEND_TLS = """\
  tls:
    frontend:
      default:
        validation:
          caCertificateRefs: [{{kind: ConfigMap, group: "", name: client-ca}}]
      perPort:
      - port: {fport}
        tls:
          validation:
            mode: AllowInsecureFallback
            caCertificateRefs: [{{kind: ConfigMap, group: "", name: client-ca}}]
      - port: {bport}
        tls:
          validation:
            caCertificateRefs: [{{kind: ConfigMap, group: "", name: missing}}]
"""


def manifests(sport, fport, bport, hport, e, certs):
    """HTTPS listeners strict (<sport>, default validation), fallback (<fport>,
    AllowInsecureFallback) and broken (<bport>, a missing CA ConfigMap), all with Secret cert;
    plain HTTP on <hport>; one route to the echo backend <e>."""
    listeners = (https_listener(sport, "cert", "strict") + https_listener(fport, "cert", "fallback")
                 + https_listener(bport, "cert", "broken") + http_listener(hport, "plain"))
    return docs(gateway_class(),
                gateway(listeners=listeners, spec=FRONTEND_TLS.format(fport=fport, bport=bport)),
                http_route("[{backendRefs: [{name: svc, port: 80}]}]"),
                backend("svc", e.addr, e.port), tls_secret("cert", certs, "ec_def"))


def client_ca(certs, leaf):
    """The ConfigMap client-ca holding <certs>/<leaf> as ca.crt."""
    return config_map("client-ca", {"ca.crt": read_text(certs, leaf)})


def curl(host, port, certs, client=None, extra=()):
    """GET https://default.test:<port>/cc with an optional client certificate (base name in
    certs); returns (rc, body bytes, stderr)."""
    argv = ["curl", "-sS", "--max-time", "10", "--cacert", os.path.join(certs, "ca.crt"),
            "--resolve", f"default.test:{port}:{host}", *extra]
    if client:
        argv += ["--cert", os.path.join(certs, client + ".crt"),
                 "--key", os.path.join(certs, client + ".key")]
    argv.append(f"https://default.test:{port}/cc")
    p = subprocess.run(argv, capture_output=True, timeout=20)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def passes(host, port, certs, client, extra=()):
    rc, out, err = curl(host, port, certs, client, extra)
    return rc == 0 and b'"path":"/cc"' in out.replace(b" ", b""), (rc, out[:200], err[-300:])


def refused(host, port, certs, client, extra=()):
    rc, out, err = curl(host, port, certs, client, extra)
    return rc != 0 and not out.startswith(b"{"), (rc, out[:200], err[-300:])


def main():
    if not shutil.which("openssl") or not shutil.which("curl"):
        print("skip - tls client certificates: openssl or curl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-tlscc-")
    gw = None
    try:
        certs = gen_certs(d)
        e = start_echo(pod="pod-cc")
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        sport, fport, bport, hport = (free_port(host) for _ in range(4))
        with open(os.path.join(conf, "gateway.yaml"), "w") as f:
            f.write(manifests(sport, fport, bport, hport, e, certs))
        cm = os.path.join(conf, "ca.yaml")
        with open(cm, "w") as f:
            f.write(client_ca(certs, "ca.crt"))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "2"])
        up = all(wait_port(host, p, 10.0) for p in (sport, fport, hport))
        check("tls client certs: HTTPS and HTTP ports listen", up)

        for ver, extra in (("1.3", ["--tlsv1.3"]), ("1.2", ["--tlsv1.2", "--tls-max", "1.2"])):
            ok, why = passes(host, sport, certs, "ec_b", extra)
            check(f"tls client certs: TLS {ver} AllowValidOnly: certificate of the CA -> 200", ok,
                  why)
            ok, why = passes(host, sport, certs, "rsa_b", extra)
            check(f"tls client certs: TLS {ver} AllowValidOnly: RSA certificate of the CA -> 200",
                  ok, why)
            ok, why = refused(host, sport, certs, None, extra)
            check(f"tls client certs: TLS {ver} AllowValidOnly: no certificate -> refused", ok,
                  why)
            ok, why = refused(host, sport, certs, "stranger", extra)
            check(f"tls client certs: TLS {ver} AllowValidOnly: another CA's certificate -> "
                  "refused", ok, why)
            for client in (None, "stranger", "ec_b"):
                ok, why = passes(host, fport, certs, client, extra)
                check(f"tls client certs: TLS {ver} AllowInsecureFallback: "
                      f"{client or 'no certificate'} -> 200", ok, why)

        # The fallback port still asks for a certificate (TLS 1.2: CertificateRequest).
        p = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{fport}", "-tls1_2",
                            "-servername", "default.test"], input=b"", capture_output=True,
                           timeout=20)
        txt = p.stdout.decode(errors="replace")
        check("tls client certs: AllowInsecureFallback requests a client certificate",
              "Client Certificate Types" in txt, txt[-800:])

        # A listener whose only CA reference is missing is not opened; HTTP is unaffected.
        def connects(port):
            try:
                with socket.create_connection((host, port), timeout=2.0):
                    return True
            except OSError:
                return False

        check("tls client certs: listener with a missing CA ConfigMap is closed",
              not connects(bport))
        r = http_request(host, hport, "GET", "/plain", headers={"Host": "plain.test"},
                         timeout=5.0)
        check("tls client certs: plain HTTP unaffected", r.status == 200, r)

        # New CA in the ConfigMap: the stranger's self-signed certificate becomes the trust
        # anchor; the old CA's clients are refused on new connections.
        with open(cm + ".tmp", "w") as f:
            f.write(client_ca(certs, "stranger.crt"))
        os.rename(cm + ".tmp", cm)
        deadline = time.time() + 10.0
        ok = False
        while time.time() < deadline and not ok:
            ok = passes(host, sport, certs, "stranger")[0]
            if not ok:
                time.sleep(0.2)
        check("tls client certs: CA replaced in the ConfigMap -> its certificates pass", ok)
        ok, why = refused(host, sport, certs, "ec_b")
        check("tls client certs: CA replaced -> the old CA's certificates are refused", ok, why)
    finally:
        if gw is not None:
            stop(gw)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
