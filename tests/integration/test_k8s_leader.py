#!/usr/bin/python3
"""Two serval-gateway replicas against one fake API server: both serve traffic, exactly one (the
Lease holder) writes status; after SIGKILL of the leader the other takes the Lease over within the
lease duration (+ one retry period) and writes status from then on; a clean SIGTERM releases the
Lease (holderIdentity "", leaseDurationSeconds 1). Short election timings through the documented
SERVAL_K8S_* environment knobs: lease 6 s, renew deadline 4 s, retry 1 s."""
import os
import re
import signal
import sys
import time



sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest  # noqa: E402
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROUTE, FakeAPI, apply, backend, base, config, get, pod_of, ready,  # noqa: E402
                     start_k8s_gateway, wait_for)

LEASE = "/apis/coordination.k8s.io/v1/namespaces/default/leases/serval-gateway"
ENV = {"SERVAL_K8S_LEASE_DURATION_MS": "6000", "SERVAL_K8S_RENEW_DEADLINE_MS": "4000",
       "SERVAL_K8S_RETRY_PERIOD_MS": "1000"}


def kubeconfig_for(api, name, token):
    with open(api.kubeconfig) as f:
        text = f.read()
    text = re.sub(r"token: \S+", "token: " + token, text)
    path = os.path.join(api.state_dir, "kc-" + name)
    with open(path, "w") as f:
        f.write(text)
    return path


def leader(gw):
    return config(gw).get("leaderElection", {}).get("leader") is True


def status_writers(api, since):
    return {r.get("user") for r in api.requests(since)
            if r["method"] == "PUT" and r.get("subresource") == "status"}


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    api.set_tokens({"gw-a": "token-a", "gw-b": "token-b"})
    e = start_echo(pod="web-a", ns="demo")
    h1, h2 = unique_addr(), unique_addr()
    port = free_port(h1)
    g1 = g2 = None
    try:
        apply(api, base(port) + "---\n" +
              backend("svc-a", e.addr, e.port) + "---\n" +
              ROUTE.format(name="app", prefix="/a", svc="svc-a"))
        g1 = start_k8s_gateway(api, h1, env=dict(ENV, POD_NAME="gw-a"),
                               kubeconfig=kubeconfig_for(api, "a", "token-a"))
        check("leader: first replica leads", wait_for(lambda: leader(g1), 15))
        g2 = start_k8s_gateway(api, h2, env=dict(ENV, POD_NAME="gw-b"),
                               kubeconfig=kubeconfig_for(api, "b", "token-b"))
        check("leader: both replicas ready", wait_for(lambda: ready(g1) and ready(g2), 15))
        check("leader: both replicas serve traffic",
              wait_for(lambda: pod_of(get(h1, port, "/a")) == "web-a" and
                       pod_of(get(h2, port, "/a")) == "web-a"))
        check("leader: the second replica follows", not leader(g2))
        lease = api.get(LEASE).body
        check("leader: holder is POD_NAME_<random>, MicroTime with 6 digits",
              lease["spec"]["holderIdentity"].startswith("gw-a_") and
              re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", lease["spec"]["renewTime"])
              is not None, lease["spec"])

        since = api.requests()[-1]["seq"]
        apply(api, ROUTE.format(name="r2", prefix="/b", svc="svc-a"))
        time.sleep(3.0)
        check("leader: only the leader writes status", status_writers(api, since) == {"gw-a"},
              status_writers(api, since))

        g1.send_signal(signal.SIGKILL)
        t0 = time.time()
        g1.wait(5)
        if g1 in svtest._procs:
            svtest._procs.remove(g1)  # killed on purpose: not a bad exit
        g1 = None
        took = wait_for(lambda: leader(g2), 15, 0.1)
        dt = time.time() - t0
        check("leader: the follower takes over after SIGKILL of the leader", took)
        # client-go's rule: expiry is judged from when the follower *saw* the last renew (its GETs
        # come every retry period * [1, 2.2]), so the bound is lease + renew period + 2 polls.
        check("leader: ... within the lease duration (+ observation slack)",
              dt < 6.0 + 1.0 + 2 * 2.2 + 1.0, dt)
        check("leader: the new leader still serves", pod_of(get(h2, port, "/a")) == "web-a")
        since = api.requests()[-1]["seq"]
        apply(api, ROUTE.format(name="r3", prefix="/c", svc="svc-a"))
        check("leader: the new leader writes status",
              wait_for(lambda: status_writers(api, since) == {"gw-b"}, 10, 0.2),
              status_writers(api, since))
        lease = api.get(LEASE).body
        check("leader: Lease holder is the second replica, transitions counted",
              lease["spec"]["holderIdentity"].startswith("gw-b_") and
              lease["spec"].get("leaseTransitions", 0) >= 1, lease["spec"])
        rc = stop(g2)
        g2 = None
        check("leader: clean exit", rc == 0, rc)
        lease = api.get(LEASE).body
        check("leader: SIGTERM releases the Lease (holder '', duration 1)",
              lease["spec"].get("holderIdentity") == "" and
              lease["spec"].get("leaseDurationSeconds") == 1, lease["spec"])
    finally:
        for g in (g1, g2):
            if g:
                stop(g)
        stop(e)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
