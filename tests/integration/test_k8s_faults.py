#!/usr/bin/python3
"""Kubernetes provider under API server faults (fake API server): dropped watches (abrupt, half an
event), stalled watches (restarted after SERVAL_K8S_WATCH_IDLE_MS), 500 and 429 with Retry-After,
a malformed event, ERROR 410 and compaction while disconnected (relist; deletions missed while
away are applied), token rotation and expiry (401 -> token file re-read, one retry). Under each
fault the gateway keeps serving the last good generation and stays ready; afterwards it converges
to the server's state."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, read_log, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (ROUTE, FakeAPI, apply, backend, base, config, get, pod_of, ready,  # noqa: E402
                     start_k8s_gateway, wait_for)

ROUTES = "/apis/gateway.networking.k8s.io/v1/httproutes"


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    a = start_echo(pod="web-a", ns="demo")
    b = start_echo(pod="web-b", ns="demo")
    host = unique_addr()
    port = free_port(host)
    kc = api.write_kubeconfig(os.path.join(api.state_dir, "kc-tokenfile"), token_file=True)
    gw = None
    state = {"svc": "svc-a"}

    def serving(pod):
        return pod_of(get(host, port, "/a/x")) == pod

    def flip_and_converge(name):
        """Apply a route change and wait until traffic follows it."""
        state["svc"] = "svc-b" if state["svc"] == "svc-a" else "svc-a"
        pod = "web-b" if state["svc"] == "svc-b" else "web-a"
        apply(api, ROUTE.format(name="app", prefix="/a", svc=state["svc"]))
        check(f"faults: {name}: converges to the new route", wait_for(lambda: serving(pod), 20),
              config(gw).get("reflectors"))

    def still_serving(name):
        pod = "web-b" if state["svc"] == "svc-b" else "web-a"
        check(f"faults: {name}: last good generation still served and ready",
              serving(pod) and ready(gw))

    try:
        apply(api, base(port) + "---\n" +
              backend("svc-a", a.addr, a.port) + "---\n" +
              backend("svc-b", b.addr, b.port) + "---\n" +
              ROUTE.format(name="app", prefix="/a", svc="svc-a") + "---\n" +
              ROUTE.format(name="other", prefix="/o", svc="svc-b"))
        gw = start_k8s_gateway(api, host, kubeconfig=kc,
                               env={"SERVAL_K8S_WATCH_IDLE_MS": "2500",
                                    "SERVAL_K8S_BACKOFF_CAP_MS": "2000"})
        check("faults: initial routes served", wait_for(lambda: serving("web-a"), 15))

        api.drop_watches()
        still_serving("abrupt watch drop")
        flip_and_converge("abrupt watch drop")

        api.drop_watches(partial=True)
        still_serving("watch drop mid-event")
        flip_and_converge("watch drop mid-event")

        w = sum(r["watches"] for r in config(gw)["reflectors"])
        api.stall(4.0, scope="watch")
        time.sleep(0.3)
        still_serving("stalled watches")
        flip_and_converge("stalled watches")
        check("faults: silent watches were restarted after the idle timeout",
              sum(r["watches"] for r in config(gw)["reflectors"]) > w and
              "watch silent" in read_log(gw))

        api.inject_errors(500, count=4, watch=True)
        api.drop_watches()
        time.sleep(0.3)
        still_serving("500 on watch")
        flip_and_converge("500 on watch")

        since = api.requests()[-1]["seq"]
        api.inject_errors(429, count=1, prefix=ROUTES, watch=True, retry_after=2)
        api.drop_watches()
        still_serving("429 Retry-After")
        flip_and_converge("429 Retry-After")
        log = [r for r in api.requests(since) if r["path"] == ROUTES and r.get("watch")]
        i429 = [i for i, r in enumerate(log) if r["code"] == 429]
        check("faults: a watch got 429", bool(i429), log[:4])
        if i429 and i429[0] + 1 < len(log):
            gap = log[i429[0] + 1]["time"] - log[i429[0]]["time"]
            check("faults: next watch waited for Retry-After (>= 2 s)", gap >= 1.9, gap)

        api.malformed()
        time.sleep(0.3)
        still_serving("malformed event")
        flip_and_converge("malformed event")

        relists = {r["kind"]: r["relists"] for r in config(gw)["reflectors"]}
        api.watch_error(410)
        time.sleep(0.3)
        still_serving("ERROR 410 event")
        flip_and_converge("ERROR 410 event")
        after = {r["kind"]: r["relists"] for r in config(gw)["reflectors"]}
        check("faults: ERROR 410 -> relist", after["HTTPRoute"] > relists["HTTPRoute"],
              (relists, after))

        # Disconnected while a route is deleted and history is compacted: the watch from the old
        # resourceVersion gets 410, the relist finds the route gone and deletes it.
        check("faults: /o served before", pod_of(get(host, port, "/o")) == "web-b")
        api.inject_errors(503, count=8, prefix=ROUTES, watch=True, retry_after=1)
        api.drop_watches()
        r = api.kubectl("delete", "httproute", "other", "-n", "demo")
        check("faults: kubectl delete while disconnected", r.returncode == 0, r.stderr)
        api.compact()
        still_serving("disconnected + compaction")
        check("faults: route deleted while away is gone after the relist",
              wait_for(lambda: (lambda x: x is not None and x.status == 404)(
                  get(host, port, "/o")), 30))
        flip_and_converge("disconnected + compaction")

        reads = config(gw).get("tokenReads", 0)
        api.rotate_token()
        api.write_kubeconfig(api.kubeconfig)  # kubectl's own copy of the token
        api.drop_watches()
        time.sleep(0.3)
        still_serving("token rotation")
        flip_and_converge("token rotation")
        check("faults: token file re-read after the 401", config(gw).get("tokenReads", 0) > reads)

        api.expire_token()
        api.drop_watches()
        time.sleep(1.0)
        still_serving("token expired (401)")
        api.reset_token()
        flip_and_converge("token expired then valid again")
        check("faults: every reflector watching at the end",
              wait_for(lambda: all(r["watching"] for r in config(gw)["reflectors"]), 10),
              config(gw).get("reflectors"))
    finally:
        if gw:
            rc = stop(gw)
            check("faults: gateway exits cleanly", rc == 0, rc)
        stop(a)
        stop(b)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
