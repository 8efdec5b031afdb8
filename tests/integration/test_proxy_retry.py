#!/usr/bin/env python3
"""HTTPRoute timeouts and retry policies through the binary: timeouts.request bounds the whole
exchange (504 before the response head, the connection cut after it), a retry policy repeats
tries on its codes, on connection resets and on backendRequest timeouts (replaying a small POST
body too), within timeouts.request, preferring another endpoint; routes without a policy do not
repeat a 500; /metrics counts it all. serval-echo's /retry/ simulator fails the first
succeedAfter tries of a uuid (with responseCode, else by a TCP reset)."""
import os
import re
import shutil
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from manifests import backend, docs, endpoint_slice, gateway, gateway_class, service  # noqa: E402
from svtest import check  # noqa: E402

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: demo}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /retry/codes}}]
    retry: {codes: [500, 502], attempts: 2, backoff: 10ms}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /retry/conn}}]
    retry: {attempts: 2, backoff: 1ms}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /retry/try-timeout}}]
    retry: {attempts: 1}
    timeouts: {backendRequest: 200ms}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /retry/budget}}]
    retry: {codes: [500], attempts: 10, backoff: 100ms}
    timeouts: {request: 400ms}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /other}}]
    retry: {codes: [503], attempts: 1, backoff: 1ms}
    backendRefs: [{name: svc-b, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /req-timeout}}, {path: {type: Exact, value: /slow}}]
    timeouts: {request: 500ms}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /mirrored-retry}}]
    retry: {codes: [500], attempts: 1}
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: svc-m, port: 80}}
    backendRefs: [{name: svc-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: svc-a, port: 80}]
"""


def always_503(sock, _peer):
    """A bad endpoint: answers every request 503 and closes."""
    head, _ = t.read_request_head(sock)
    if head:
        sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")


def manifests(port, e, bad, em):
    """svc-a -> the echo; svc-b -> the echo and the always-503 server (two slices); svc-m -> the
    mirror echo."""
    slice2 = endpoint_slice("svc-b", bad.addr, bad.port).replace("name: svc-b-1", "name: svc-b-2")
    return docs(gateway_class(), gateway(port), backend("svc-a", e.addr, e.port),
                backend("svc-m", em.addr, em.port), service("svc-b"), endpoint_slice("svc-b", e.addr, e.port), slice2, ROUTE)


def metric(gw, name):
    text = t.http_request(gw.admin[0], gw.admin[1], "GET", "/metrics").body.decode()
    return sum(int(m.group(1)) for m in
               re.finditer(r"^serval_" + name + r"\{[^}]*\} (\d+)", text, re.M))


def main():
    e = t.start_echo(pod="pod-a")
    bad = t.TcpServer(always_503)
    em = t.start_echo(pod="pod-m")
    host = t.unique_addr()
    port = t.free_port(host)
    d = tempfile.mkdtemp(prefix="sv-retry-")
    with open(os.path.join(d, "all.yaml"), "w") as f:
        f.write(manifests(port, e, bad, em))
    gw = t.start_gateway(["--config-dir", d, "--bind", host, "--workers", "2"], wait=(host, port))
    H = {"Host": "demo.test"}

    def get(path, timeout=5.0, method="GET", body=None):
        return t.http_request(host, port, method, path, headers=H, body=body, timeout=timeout)

    def tries_seen(u, after):
        """How many tries of uuid <u> the echo counted: ask it directly once more with
        succeedAfter=<after>; it fails while its count (this ask included) is <= after."""
        r = t.http_request(e.addr, e.port, "GET",
                           f"/retry/x?responseCode=500&succeedAfter={after}&uuid={u}")
        return r.status

    deadline = time.time() + 10
    r = get("/plain")
    while r.status != 200 and time.time() < deadline:
        time.sleep(0.1)
        r = get("/plain")
    check("retry: routes are live", r.status == 200, r)
    r0 = metric(gw, "route_retries_total")

    u = uuid.uuid4().hex
    r = get(f"/retry/codes/a?responseCode=500&succeedAfter=2&uuid={u}")
    check("retry codes: two 500s then a 200 within attempts 2", r.status == 200 and
          r.json()["pod"] == "pod-a", r)
    u = uuid.uuid4().hex
    r = get(f"/retry/codes/b?responseCode=502&succeedAfter=3&uuid={u}")
    check("retry codes: attempts used up -> the last response (502) reaches the client",
          r.status == 502, r)
    check("retry codes: exactly 1 + attempts tries (the echo's 4th ask succeeds)",
          tries_seen(u, 3) == 200)
    u = uuid.uuid4().hex
    r = get(f"/retry/codes/c?responseCode=503&succeedAfter=1&uuid={u}")
    check("retry codes: a status not listed is not retried", r.status == 503, r)
    check("retry codes: ... it was tried once (the echo's 2nd ask succeeds)",
          tries_seen(u, 1) == 200)
    u = uuid.uuid4().hex
    r = get(f"/retry/none?responseCode=500&succeedAfter=1&uuid={u}")
    check("no policy: a 500 is passed on, not retried", r.status == 500, r)
    u = uuid.uuid4().hex
    r = get(f"/retry/codes/post?responseCode=500&succeedAfter=1&uuid={u}", method="POST",
            body=b"replay me")
    check("retry codes: a small POST body is replayed on the next try",
          r.status == 200 and r.json()["method"] == "POST" and
          r.json()["headers"].get("Content-Length") == ["9"], r)

    r = get("/mirrored-retry/x", method="POST", body=b"for the mirror too")
    check("retry + mirror: a POST whose body is kept for replay is answered", r.status == 200, r)
    check("retry + mirror: the mirror got the whole body too (its echo saw the request end)",
          t.wait_log(em, r"request made to /mirrored-retry/x", 3) is not None)

    u = uuid.uuid4().hex
    r = get(f"/retry/conn/a?succeedAfter=2&uuid={u}")
    check("retry connection errors: two resets then a 200", r.status == 200, r)
    u = uuid.uuid4().hex
    r = get(f"/retry/conn/b?succeedAfter=5&uuid={u}")
    check("retry connection errors: attempts used up -> 503", r.status == 503, r)
    check("retry connection errors: 1 + attempts tries", tries_seen(u, 3) == 200)

    u = uuid.uuid4().hex
    t0 = time.monotonic()
    r = get(f"/retry/try-timeout?delayRetry=1s&responseCode=500&succeedAfter=1&uuid={u}")
    took = time.monotonic() - t0
    check("backendRequest timeout is retried: the 2nd try answers 200", r.status == 200, r)
    check("backendRequest timeout: the slow 1st try was cut at ~200ms", took < 0.9, took)
    u = uuid.uuid4().hex
    r = get(f"/retry/try-timeout?delayRetry=1s&responseCode=500&succeedAfter=2&uuid={u}")
    check("backendRequest timeout on every try -> 504", r.status == 504, r)

    u = uuid.uuid4().hex
    t0 = time.monotonic()
    r = get(f"/retry/budget?responseCode=500&succeedAfter=20&uuid={u}")
    took = time.monotonic() - t0
    check("timeouts.request bounds all tries and backoffs: 504", r.status == 504, r)
    check("timeouts.request: answered near 400ms, not after 10 retries x 100ms", took < 0.9, took)

    statuses = [get(f"/other/{i}").status for i in range(6)]
    check("retry prefers another endpoint: the always-503 endpoint never wins",
          statuses == [200] * 6, statuses)
    check("retry prefers another endpoint: the bad endpoint was tried", bad.accepted > 0,
          bad.accepted)

    t0 = time.monotonic()
    r = get("/req-timeout/x?delay=3s", timeout=10)
    took = time.monotonic() - t0
    check("timeouts.request before the response head: 504", r.status == 504, r)
    check("timeouts.request: well before the backend's 3 s", took < 2.0, took)
    t0 = time.monotonic()
    raw = t.raw_request(host, port, b"GET /slow?rate=2000&n=20000 HTTP/1.1\r\n"
                        b"Host: demo.test\r\n\r\n", timeout=10)
    took = time.monotonic() - t0
    head, _, body = raw.partition(b"\r\n\r\n")
    check("timeouts.request after the head: the head and some body came through",
          head.startswith(b"HTTP/1.1 200") and 0 < len(body), head[:80])
    check("timeouts.request after the head: the connection is cut, the body incomplete",
          len(body) < 20000 and took < 3.0, (len(body), took))
    with t.Client(host, port) as c:
        r1 = c.request("GET", "/req-timeout/fast", headers=H)
        time.sleep(0.7)  # past the 500ms of the first request: its deadline must be gone
        r2 = c.request("GET", "/req-timeout/again", headers=H)
    check("timeouts.request: a finished exchange leaves no deadline on the kept-alive "
          "connection", r1.status == 200 and r2.status == 200, (r1, r2))

    check("metrics: route_retries_total counts policy retries",
          metric(gw, "route_retries_total") - r0 >= 10, metric(gw, "route_retries_total"))
    check("metrics: route_retries_exhausted_total counts given-up requests",
          metric(gw, "route_retries_exhausted_total") >= 3)
    check("metrics: request_timeouts_total counts timeouts.request expiries",
          metric(gw, "request_timeouts_total") >= 3, metric(gw, "request_timeouts_total"))

    rc = t.stop(gw)
    check("retry gateway: clean exit", rc == 0 and gw.returncode == 0, gw.returncode)
    bad.close()
    shutil.rmtree(d, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
