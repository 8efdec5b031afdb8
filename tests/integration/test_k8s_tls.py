#!/usr/bin/python3
"""API client connection settings and TLS checks: --in-cluster (KUBERNETES_SERVICE_HOST/PORT and
a kubelet-style ServiceAccount folder, token rotated by swapping ..data), the server certificate
verified against the cluster CA by IP SAN (127.0.0.1) and by DNS name (localhost, with SNI); a
name the certificate does not carry, or a foreign CA, never gets ready; --insecure-skip-tls-verify
is the only way around; exec users are rejected at start."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import binary, check, finish, free_port, read_log, stop, unique_addr  # noqa: E402
from k8stest import FakeAPI, apply, base, config, ready, start_k8s_gateway, wait_for  # noqa: E402
from svtest import start_gateway  # noqa: E402


def variant(api, name, fn):
    with open(api.kubeconfig) as f:
        text = f.read()
    path = os.path.join(api.state_dir, "kc-" + name)
    with open(path, "w") as f:
        f.write(fn(text))
    return path


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    host = unique_addr()
    port = free_port(host)
    apply(api, base(port))
    gws = []
    try:
        # in-cluster, by IP (SAN 127.0.0.1), token from the projected folder
        sa = api.serviceaccount_dir("default")
        env = dict(api.in_cluster_env(), SERVAL_K8S_SA_DIR=sa)
        g = start_gateway(["--in-cluster", "--bind", host, "--workers", "1"], env=env)
        gws.append(g)
        check("tls: --in-cluster gets ready (IP SAN verified)", wait_for(lambda: ready(g), 15))
        reads = config(g).get("tokenReads", 0)
        api.rotate_token()
        api.write_kubeconfig(api.kubeconfig)  # the kubeconfig variants below need the new token
        api.drop_watches()
        check("tls: in-cluster token rotation (..data swap) followed after the 401",
              wait_for(lambda: all(r["watching"] for r in config(g)["reflectors"]) and
                       config(g).get("tokenReads", 0) > reads, 15), config(g).get("reflectors"))
        check("tls: still ready after rotation", ready(g))

        # the API server restarts with a new CA and serving certificate; the kubelet updates
        # ca.crt in the projected folder: handshakes fail, the CA file is re-read, watches resume
        api.args.append("--regen-certs")
        api.restart()
        api.args.remove("--regen-certs")
        api.rotate_token()
        api.write_kubeconfig(api.kubeconfig)
        check("tls: CA rotation: ca.crt re-read after failed handshakes, watches resume",
              wait_for(lambda: config(g).get("caReloads", 0) >= 1 and
                       all(r["watching"] for r in config(g)["reflectors"]), 20),
              (config(g).get("caReloads"), config(g).get("reflectors")))
        check("tls: still ready after the CA rotation", ready(g))
        stop(g)
        gws.remove(g)

        # by DNS name: localhost is a DNS SAN of the fake server's certificate
        kc = variant(api, "localhost", lambda t: t.replace("https://127.0.0.1:", "https://localhost:"))
        g = start_k8s_gateway(api, host, kubeconfig=kc)
        gws.append(g)
        check("tls: DNS host name verified (localhost)", wait_for(lambda: ready(g), 15))
        stop(g)
        gws.remove(g)

        # a name the certificate does not carry: never ready, TLS error logged
        kc = variant(api, "badname", lambda t: re.sub(
            r"(\n(\s+)server: [^\n]+)", r"\1\n\2tls-server-name: wrong.example", t, count=1))
        g = start_k8s_gateway(api, host, kubeconfig=kc)
        gws.append(g)
        time.sleep(2.0)
        check("tls: host name mismatch is refused (not ready)", not ready(g))
        check("tls: ... and the reason is logged", "TLS handshake" in read_log(g), read_log(g)[-500:])
        stop(g)
        gws.remove(g)
        g = start_k8s_gateway(api, host, kubeconfig=kc, extra=["--insecure-skip-tls-verify"])
        gws.append(g)
        check("tls: --insecure-skip-tls-verify connects anyway", wait_for(lambda: ready(g), 15))
        stop(g)
        gws.remove(g)

        # a CA that did not sign the server certificate
        other = FakeAPI().start()
        with open(other.kubeconfig) as f:
            other_ca = re.search(r"certificate-authority-data: (\S+)", f.read()).group(1)
        other.stop()
        kc = variant(api, "badca", lambda t: re.sub(r"certificate-authority-data: \S+",
                                                    "certificate-authority-data: " + other_ca, t))
        g = start_k8s_gateway(api, host, kubeconfig=kc)
        gws.append(g)
        time.sleep(2.0)
        check("tls: server certificate from another CA is refused", not ready(g))
        stop(g)
        gws.remove(g)

        # exec users need plugins: rejected clearly at start
        kc = variant(api, "exec", lambda t: re.sub(r"token: \S+",
                                                   "exec: {command: aws, apiVersion: x}", t))
        r = subprocess.run([binary("serval-gateway"), "--kubeconfig", kc], capture_output=True,
                           text=True, timeout=20)
        check("tls: kubeconfig exec user rejected at start", r.returncode == 2 and
              "exec" in r.stderr, (r.returncode, r.stderr))
    finally:
        for g in gws:
            stop(g)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
