#!/usr/bin/python3
"""Self-test of the conformance runner's own logic (YAML reader, Go host matching, judging), run
by run.sh before the corpus so that a runner bug cannot turn into passes. Exit 1 on failure."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import miniyaml  # noqa: E402
import wire  # noqa: E402

failures = 0


def check(name, cond, detail=""):
    global failures
    if not cond:
        failures += 1
        print(f"selftest: not ok - {name} {detail}")


DOC = """\
# comment
apiVersion: v1
kind: ConfigMap
metadata:
  name: x   # trailing comment
  labels: {a: "1", b: c}
data:
  text: |
    line one
    # not a comment

    line three
  folded: >-
    a
    b
  empty: {}
  list: [1, two, "3"]
---
kind: List
items:
- name: a
  port: 80
  ok: true
- - nested
- "quoted: colon"
- 'it''s'
spec:
  hostnames:
  - "*.example.com"
  none: ~
  f: 1.5
"""

docs = miniyaml.load_all(DOC)
check("two documents", len(docs) == 2, repr(docs))
check("flow map", docs[0]["metadata"]["labels"] == {"a": "1", "b": "c"})
check("literal block", docs[0]["data"]["text"] == "line one\n# not a comment\n\nline three\n",
      repr(docs[0]["data"]["text"]))
check("folded strip", docs[0]["data"]["folded"] == "a b", repr(docs[0]["data"]["folded"]))
check("empty map", docs[0]["data"]["empty"] == {})
check("flow list types", docs[0]["data"]["list"] == [1, "two", "3"])
check("sequence of maps", docs[1]["items"][0] == {"name": "a", "port": 80, "ok": True},
      repr(docs[1]["items"]))
check("nested sequence", docs[1]["items"][1] == ["nested"])
check("quoted scalars", docs[1]["items"][2:] == ["quoted: colon", "it's"])
check("compact list", docs[1]["spec"]["hostnames"] == ["*.example.com"])
check("null and float", docs[1]["spec"]["none"] is None and docs[1]["spec"]["f"] == 1.5)
try:
    miniyaml.load_all("a: &anchor 1\n")
    check("anchors refused", False)
except ValueError:
    pass

check("go host wildcard", wire.go_match_host("*.org", "example.org"))
check("go host one label only", not wire.go_match_host("*.org", "a.example.org"))
check("go host exact", wire.go_match_host("Example.ORG", "example.org"))
check("go host star alone", not wire.go_match_host("*", "example.org"))
check("canonical header", wire.canonical("x-header-set") == "X-Header-Set")


def res(status, body=None, headers=()):
    r = wire.Result()
    r.status = status
    r.headers = list(headers)
    if body is not None:
        r.body = json.dumps(body).encode()
        r.headers.append(("Content-Type", "application/json"))
    return r


REQ = {"method": "GET", "path": "/p?x=1", "scheme": "http"}
EXP = {"status": 200, "backend": "infra-backend-v1", "namespace": "ns",
       "backend_request": {"method": "GET", "path": "/p?x=1", "host": None,
                           "headers": {"X-A": "1,2"}, "absent_headers": ["X-Gone"]},
       "response_headers": {"X-R": "a,b"}}
GOOD = {"path": "/p?x=1", "host": "h", "method": "GET", "namespace": "ns",
        "pod": "infra-backend-v1-abc-def", "headers": {"X-A": ["1", "2"]}}
check("judge pass", wire.judge(res(200, GOOD, [("X-R", "a"), ("X-R", "b")]), REQ, EXP) is None,
      wire.judge(res(200, GOOD, [("X-R", "a"), ("X-R", "b")]), REQ, EXP))
check("judge wrong pod", wire.judge(res(200, dict(GOOD, pod="infra-backend-v2-a-b"),
                                        [("X-R", "a,b")]), REQ, EXP) is not None)
check("judge wrong status", wire.judge(res(404, GOOD), REQ, EXP) is not None)
check("judge absent header present",
      wire.judge(res(200, dict(GOOD, headers={"X-A": ["1", "2"], "x-gone": ["1"]}),
                     [("X-R", "a,b")]), REQ, EXP) is not None)
check("judge appended value spacing",
      wire.judge(res(200, dict(GOOD, headers={"X-A": ["1, 2"]}), [("X-R", "a,b")]), REQ, EXP)
      is not None)
check("judge namespace", wire.judge(res(200, dict(GOOD, namespace="other"), [("X-R", "a,b")]),
                                    REQ, EXP) is not None)
check("judge not json", wire.judge(res(200, None, [("X-R", "a,b")]), REQ, EXP) is not None)
check("judge 504 for 408", wire.judge(res(504), REQ, {"status": [408]}) is None)
t = wire.Result()
t.error = "reset"
check("judge transport error", wire.judge(t, REQ, EXP) is not None)
RED = {"status": [302], "redirect": {"scheme": "https", "host": "example.org", "port": None,
                                     "path": "/x"}}
check("redirect ok", wire.judge(res(302, None, [("Location", "https://example.org/x")]), REQ, RED)
      is None)
check("redirect default port ok",
      wire.judge(res(302, None, [("Location", "https://example.org:443/x")]), REQ, RED) is None)
check("redirect wrong port",
      wire.judge(res(302, None, [("Location", "https://example.org:8443/x")]), REQ, RED)
      is not None)
check("redirect wrong path",
      wire.judge(res(302, None, [("Location", "https://example.org/y")]), REQ, RED) is not None)
check("redirect explicit port", wire.judge(
    res(302, None, [("Location", "http://example.org:8080/x")]), REQ,
    {"status": [302], "redirect": {"scheme": "http", "host": None, "port": 8080, "path": "/x"}})
    is None)

if failures:
    print(f"selftest: {failures} failed")
    sys.exit(1)
