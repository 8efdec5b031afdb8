#!/usr/bin/python3
"""Status writeback details: another controller's entry in HTTPRoute status.parents survives our
writes (read-modify-write PUT /status with resourceVersion), our conditions keep
lastTransitionTime when their status did not flip and move it when it did, observedGeneration
follows metadata.generation, and nothing is written when nothing changed."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svtest import check, finish, free_port, start_echo, stop, unique_addr  # noqa: E402
from k8stest import (CONTROLLER, ROUTE, FakeAPI, apply, backend, base, conditions,  # noqa: E402
                     kget, our_parents, path_for, ready, start_k8s_gateway, wait_for)

FOREIGN = {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                         "name": "their-gw"},
           "controllerName": "example.com/other-controller",
           "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                           "message": "theirs", "observedGeneration": 1,
                           "lastTransitionTime": "2026-01-01T00:00:00Z"}]}


def cond(parent, t):
    return [c for c in parent.get("conditions", []) if c["type"] == t][0]


def status_puts(api, since):
    return [r for r in api.requests(since) if r["method"] == "PUT" and
            r.get("subresource") == "status" and r.get("user_agent", "").startswith("serval")]


def main():
    api = FakeAPI(bookmark_interval=1.0).start()
    e = start_echo(pod="web-a", ns="demo")
    host = unique_addr()
    port = free_port(host)
    gw = None
    try:
        apply(api, base(port) + "---\n" +
              backend("svc-a", e.addr, e.port) + "---\n" +
              ROUTE.format(name="app", prefix="/a", svc="svc-a"))
        gw = start_k8s_gateway(api, host)
        check("status: ready", wait_for(lambda: ready(gw), 15))
        ok = wait_for(lambda: (lambda p: p and conditions(p[0]).get("ResolvedRefs") == "True")(
            our_parents(kget(api, "httproute", "app"))), 15, 0.2)
        check("status: our parent entry written", ok)

        # another controller adds its own entry (read-modify-write, as it should)
        path = path_for("httproutes", "demo", "app")
        obj = api.get(path).body
        obj["status"]["parents"].insert(0, FOREIGN)
        r = api.update(path + "/status", obj)
        check("status: foreign controller's entry stored", r.status == 200, r)
        before = our_parents(kget(api, "httproute", "app"))[0]

        # steady state: nothing to write
        time.sleep(1.0)
        since = api.requests()[-1]["seq"]
        time.sleep(2.5)
        check("status: no write when nothing changed", not status_puts(api, since),
              [(p["path"]) for p in status_puts(api, since)])

        # our view changes (backend disappears): ResolvedRefs flips, Accepted does not
        since = api.requests()[-1]["seq"]
        apply(api, ROUTE.format(name="app", prefix="/a", svc="nowhere"))
        ok = wait_for(lambda: (lambda p: p and conditions(p[0]).get("ResolvedRefs") == "False")(
            our_parents(kget(api, "httproute", "app"))), 15, 0.2)
        check("status: our entry follows the change (ResolvedRefs False)", ok)
        route = kget(api, "httproute", "app")
        parents = route["status"]["parents"]
        theirs = [p for p in parents if p["controllerName"] == FOREIGN["controllerName"]]
        check("status: the other controller's entry is untouched", theirs == [FOREIGN],
              parents)
        ours = our_parents(route)
        check("status: exactly one entry of ours", len(ours) == 1, parents)
        if ours:
            a0, a1 = cond(before, "Accepted"), cond(ours[0], "Accepted")
            r0, r1 = cond(before, "ResolvedRefs"), cond(ours[0], "ResolvedRefs")
            check("status: Accepted kept its lastTransitionTime (no flip)",
                  a0["lastTransitionTime"] == a1["lastTransitionTime"], (a0, a1))
            check("status: ResolvedRefs lastTransitionTime moved on the flip",
                  r1["lastTransitionTime"] >= r0["lastTransitionTime"] and
                  r1["status"] != r0["status"], (r0, r1))
            check("status: observedGeneration is the route's new generation",
                  a1.get("observedGeneration") == route["metadata"]["generation"] == 2,
                  (a1, route["metadata"]))
        puts = status_puts(api, since)
        check("status: written with PUT .../status (resourceVersion checked by the server)",
              any(p["path"].endswith("/httproutes/app/status") and p["code"] == 200
                  for p in puts), [(p["path"], p["code"]) for p in puts])

        # the route stops referring to our Gateway: our entry goes away, theirs stays
        apply(api, ROUTE.format(name="app", prefix="/a", svc="svc-a").replace(
            "parentRefs: [{name: gw}]", "parentRefs: [{name: their-gw}]"))
        ok = wait_for(lambda: not our_parents(kget(api, "httproute", "app")), 15, 0.2)
        check("status: our stale entry removed when the route leaves our Gateway", ok,
              kget(api, "httproute", "app").get("status"))
        route = kget(api, "httproute", "app")
        check("status: ... and theirs is still there",
              [p for p in route["status"]["parents"]
               if p["controllerName"] != CONTROLLER] == [FOREIGN], route["status"])
    finally:
        if gw:
            check("status: clean exit", stop(gw) == 0)
        stop(e)
        api.stop()
    finish()


if __name__ == "__main__":
    main()
