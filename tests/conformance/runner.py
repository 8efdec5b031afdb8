#!/usr/bin/python3
"""Gateway API conformance runner for serval-gateway (Python standard library only).

Runs the cases of the shared corpus (<corpus>/cases.json, see its README) against
build/serval-gateway in Kubernetes mode: a fake API server holds the manifests (status writeback
is exercised), serval-echo processes stand in for the Deployments' pods, and the runner writes
the EndpointSlices kube-controller-manager would. Requests and checks follow upstream's
conformance helpers; see tests/conformance/README.md.

    runner.py [--case NAME]... [--corpus DIR] [--all-features] [--max-wait S]
              [--expected FILE] [--report FILE] [--table FILE] [--keep] [-v]

Exit status: 0 when every case listed in --expected passed (or no --expected), 1 otherwise,
2 on a setup failure.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import k8s  # noqa: E402
import wire  # noqa: E402
import svtest  # noqa: E402  (k8s put tests/integration on sys.path)

# Features the project claims (upstream SupportedFeatures). A case runs when every feature it
# lists is claimed; the others are reported as failed ("not claimed") unless --all-features.
CLAIMED = [
    "Gateway", "HTTPRoute", "ReferenceGrant",
    "GatewayPort8080", "GatewayHTTPListenerIsolation",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "HTTPRouteQueryParamMatching", "HTTPRouteMethodMatching",
    "HTTPRouteResponseHeaderModification", "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteHostRewrite", "HTTPRoutePathRewrite",
    "HTTPRoutePathRedirect", "HTTPRouteSchemeRedirect", "HTTPRoutePortRedirect",
    "HTTPRoute303RedirectStatusCode", "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteRequestMirror", "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout", "HTTPRouteBackendTimeout",
    "HTTPRouteCORS", "HTTPRouteBackendProtocolWebSocket", "HTTPRouteBackendProtocolH2C",
    "HTTPRouteParentRefPort", "HTTPRouteNamedRouteRule", "HTTPRouteDestinationPortMatching",
    "HTTPRouteRetry", "HTTPRouteRetryConnectionError", "HTTPRouteRetryBackendTimeout",
    "HTTPRouteBackendURLRewrite", "HTTPRouteBackendRequestRedirect",
    "GatewayAddressEmpty", "GatewayStaticAddresses",
    "ListenerSet",
    "BackendTLSPolicy", "BackendTLSPolicySANValidation", "GatewayBackendClientCertificate",
    "GatewayFrontendClientCertificateValidation",
    "GatewayFrontendClientCertificateValidationInsecureFallback",
    "TLSRoute",
]
CORE = {"Gateway", "HTTPRoute", "ReferenceGrant"}
GATEWAY_TLS_FEATURES = {"TLSRoute"}

TIMEOUTS = {  # upstream's timeouts per check (seconds)
    "gateway_address": 180, "gateway_condition": 180, "namespaces_ready": 300,
    "gatewayclass_accepted": 180, "listenerset_condition": 180, "gateway_status_addresses": 180,
}
DEFAULT_TIMEOUT = 60
MAX_TIME_TO_CONSISTENCY = 30.0
CONSISTENT = 3


class CaseFailed(Exception):
    pass


class CaseSkipped(Exception):
    pass


def find_corpus(explicit):
    cands = [explicit] if explicit else []
    cands += [os.environ.get("SERVAL_CONFORMANCE_DIR"), os.path.join(ROOT, "..", "shared",
                                                                      "conformance"),
              os.path.join(ROOT, "..", "..", "shared", "conformance")]
    for c in cands:
        if c and os.path.isfile(os.path.join(c, "cases.json")):
            return os.path.abspath(c)
    return None


def conds_current(obj, conds):
    gen = (obj.get("metadata") or {}).get("generation")
    return all(c.get("observedGeneration") == gen for c in conds)


def cond_match(conds, want):
    for c in conds or []:
        if c.get("type") == want["type"] and c.get("status") == want["status"] and \
                (want.get("reason") is None or c.get("reason") == want["reason"]):
            return True
    return False


def fmt_conds(conds):
    return ", ".join(f"{c.get('type')}={c.get('status')}/{c.get('reason')}"
                     f"@{c.get('observedGeneration')}" for c in conds or []) or "none"


class Runner:
    def __init__(self, args):
        self.args = args
        self.corpus = args.corpus
        self.workdir = tempfile.mkdtemp(prefix="serval-conformance-")
        self.cluster = None
        self.gw = None
        self.bind = None
        self.log_lines = []
        self.results = []  # dicts: name, features, result, reason, seconds
        self.addresses = {}
        self.pool_active = False
        self.usable_addr = None
        self.crashes = 0

    def log(self, msg):
        line = time.strftime("%H:%M:%S ") + msg
        self.log_lines.append(line)
        if self.args.verbose:
            print(line, flush=True)

    def wait_cap(self, t):
        return min(t, self.args.max_wait) if self.args.max_wait else t

    # --- setup --------------------------------------------------------------------------

    def setup(self):
        self.cluster = k8s.Cluster(self.workdir, self.log).start()
        c = self.cluster
        c.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                 "metadata": {"name": k8s.CLASS},
                 "spec": {"controllerName": k8s.CONTROLLER}})
        for obj in k8s.load_manifest(os.path.join(self.corpus, "base", "manifests.yaml")):
            try:
                c.apply(k8s.prepare(obj))
            except k8s.UnknownKind as e:
                self.log(f"base: fake API server has no kind {e}; skipped")
        with open(os.path.join(self.corpus, "base", "programmatic-resources.json")) as f:
            spec = json.load(f)
        for obj in c.make_programmatic(spec):
            c.apply(obj)
        for n in c.sync_workloads():
            self.log("base: " + n)
        self.start_gateway()
        ok, detail = k8s.wait(lambda: self.namespaces_ready(
            ["gateway-conformance-infra", "gateway-conformance-app-backend",
             "gateway-conformance-web-backend"]), self.wait_cap(60))
        self.log(f"setup: namespaces ready: {ok} {detail}")
        # With a working address pool each Gateway reports its own address, not --bind.
        g = self.obj("Gateway", "gateway-conformance-infra", "same-namespace") or {}
        seen = [a.get("value") for a in (g.get("status") or {}).get("addresses") or []]
        self.pool_active = bool(seen) and self.bind not in seen
        self.usable_addr = f"127.{self.cluster.net}.200.9" if self.pool_active else self.bind
        self.log(f"setup: per-Gateway addresses: {self.pool_active} ({seen})")
        return ok, detail

    def start_gateway(self):
        self.bind = f"127.{self.cluster.net}.0.1"
        h = f"127.{self.cluster.net}.0.2"
        args = ["--kubeconfig", self.cluster.api.kubeconfig, "--bind", self.bind,
                "--workers", "1", "--admin", f"{h}:{svtest.free_port(h)}",
                "--controller-name", k8s.CONTROLLER]
        # One address per Gateway, as upstream expects, when the gateway offers it.
        helptext = subprocess.run([svtest.binary("serval-gateway"), "--help"],
                                  capture_output=True, text=True, timeout=10)
        if "--gateway-address-pool" in helptext.stdout + helptext.stderr:
            args += ["--gateway-address-pool", f"127.{self.cluster.net}.128.0/17"]
        else:
            self.log("serval-gateway has no --gateway-address-pool: all Gateways share "
                     f"{self.bind}")
        args += list(self.args.gateway_arg or [])
        self.gw = svtest.start_gateway(args)
        self.log(f"gateway started: {' '.join(args)} (log {self.gw.log_path})")

    def gateway_alive(self):
        return self.gw is not None and self.gw.poll() is None

    def stop(self):
        if self.gw is not None:
            svtest.stop(self.gw, timeout=10.0)
            try:
                shutil.copyfile(self.gw.log_path, os.path.join(os.path.dirname(self.args.report),
                                                               "conformance-gateway.log"))
            except OSError:
                pass
        if self.cluster is not None:
            self.cluster.stop()
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- object access --------------------------------------------------------------------

    def obj(self, kind, ns, name):
        try:
            kd = k8s.kind_by_name(kind)
        except k8s.UnknownKind:
            raise CaseFailed(f"fake API server has no kind {kind}")
        return self.cluster.get(kd, ns if kd.namespaced else None, name)

    # --- status checks ----------------------------------------------------------------------

    def namespaces_ready(self, namespaces):
        gk = k8s.kind_by_name("Gateway")
        for ns in namespaces:
            for g in self.cluster.list(gk, ns):
                ann = (g["metadata"].get("annotations") or {})
                if ann.get("gateway-api/skip-this-for-readiness") == "true":
                    continue
                conds = (g.get("status") or {}).get("conditions") or []
                if not conds_current(g, conds):
                    return False, f"Gateway {ns}/{g['metadata']['name']} conditions not current " \
                                  f"({fmt_conds(conds)}, generation {g['metadata'].get('generation')})"
                for t in ("Accepted", "Programmed"):
                    if not cond_match(conds, {"type": t, "status": "True"}):
                        return False, f"Gateway {ns}/{g['metadata']['name']}: {fmt_conds(conds)}"
        return True, "ready"

    def gateway_address(self, ns, name, listener=None):
        g = self.obj("Gateway", ns, name)
        if g is None:
            return False, f"Gateway {ns}/{name} not found"
        conds = (g.get("status") or {}).get("conditions") or []
        if not conds_current(g, conds):
            return False, f"Gateway {ns}/{name} conditions not current ({fmt_conds(conds)})"
        addrs = [a for a in (g.get("status") or {}).get("addresses") or [] if a.get("type")]
        if not addrs:
            return False, f"Gateway {ns}/{name} has no status.addresses"
        ls = (g.get("spec") or {}).get("listeners") or []
        port = None
        for ln in ls:
            if listener and ln.get("name") == listener:
                port = ln.get("port")
        if port is None and ls:
            port = ls[0].get("port")
        self.addresses[(ns, name)] = (addrs[0]["value"], port, g)
        return True, f"{addrs[0]['value']}:{port}"

    def check(self, chk, state):
        t = chk["check"]
        kind, ns, name = chk.get("kind"), chk.get("namespace"), chk.get("name")
        timeout = self.wait_cap(TIMEOUTS.get(t, DEFAULT_TIMEOUT))

        def route_parents():
            r = self.obj(kind, ns, name)
            if r is None:
                return False, f"{kind} {ns}/{name} not found"
            parents = (r.get("status") or {}).get("parents") or []
            for want in chk["parents"]:
                wref = want["parentRef"]
                ok = False
                for p in parents:
                    ref = p.get("parentRef") or {}
                    if p.get("controllerName") != want["controllerName"].replace(
                            "{GATEWAY_CONTROLLER_NAME}", k8s.CONTROLLER):
                        continue
                    if ref.get("group") is None or ref.get("group") != wref.get("group") or \
                            ref.get("kind") is None or ref.get("kind") != wref.get("kind") or \
                            ref.get("name") != wref.get("name"):
                        continue
                    if chk.get("namespace_required") and ref.get("namespace") != \
                            wref.get("namespace"):
                        continue
                    if not chk.get("namespace_required") and ref.get("namespace") not in \
                            (None, wref.get("namespace")):
                        continue
                    pc = p.get("conditions") or []
                    if not conds_current(r, pc):
                        continue
                    if all(cond_match(pc, c) for c in want.get("conditions") or []):
                        ok = True
                        break
                if not ok:
                    return False, f"no parent {wref.get('name')} with " \
                                  f"{[(c['type'], c['status'], c['reason']) for c in want.get('conditions') or []]};" \
                                  f" have {[(p.get('parentRef'), fmt_conds(p.get('conditions'))) for p in parents]}" \
                                  f" generation {r['metadata'].get('generation')}"
            return True, "ok"

        def route_condition():
            r = self.obj(kind, ns, name)
            if r is None:
                return False, f"{kind} {ns}/{name} not found"
            parents = (r.get("status") or {}).get("parents") or []
            for p in parents:
                if not conds_current(r, p.get("conditions") or []):
                    return False, f"parent conditions not current: {fmt_conds(p.get('conditions'))}"
            want = chk["parent"]
            for p in parents:
                ref = p.get("parentRef") or {}
                if ref.get("name") != want["name"] or ref.get("namespace") not in \
                        (None, want.get("namespace")):
                    continue
                if all(cond_match(p.get("conditions"), c) for c in chk["conditions"]):
                    return True, "ok"
            return False, f"want {[(c['type'], c['status'], c['reason']) for c in chk['conditions']]}" \
                          f" on parent {want['name']}; have " \
                          f"{[(p.get('parentRef', {}).get('name'), fmt_conds(p.get('conditions'))) for p in parents]}"

        def route_no_accepted_parents():
            r = self.obj(kind, ns, name)
            if r is None:
                return False, f"{kind} {ns}/{name} not found"
            parents = (r.get("status") or {}).get("parents") or []
            if not parents:
                time.sleep(1.0)
                r = self.obj(kind, ns, name) or {}
                parents = (r.get("status") or {}).get("parents") or []
                if not parents:
                    return True, "no parents"
            if len(parents) != 1:
                return False, f"{len(parents)} parents"
            pc = parents[0].get("conditions") or []
            if not conds_current(r, pc):
                return False, f"not current: {fmt_conds(pc)}"
            if cond_match(pc, {"type": "Accepted", "status": "False"}):
                return True, "ok"
            return False, f"parent conditions {fmt_conds(pc)}"

        def route_latest():
            r = self.obj(kind, ns, name)
            if r is None:
                return False, f"{kind} {ns}/{name} not found"
            parents = (r.get("status") or {}).get("parents") or []
            if not parents:
                return False, "no parents"
            for p in parents:
                if not conds_current(r, p.get("conditions") or []):
                    return False, f"not current: {fmt_conds(p.get('conditions'))} generation " \
                                  f"{r['metadata'].get('generation')}"
            return True, "ok"

        def gw_common():
            g = self.obj("Gateway", ns, name)
            if g is None:
                return None, f"Gateway {ns}/{name} not found"
            return g, None

        def current(k, need_conds=False):
            """(object, status.conditions, None), or (None, None, why) when the object is missing
            or its conditions are absent (need_conds) or older than its generation."""
            o = self.obj(k, None if k == "GatewayClass" else ns, name)
            if o is None:
                return None, None, f"{k} {ns or ''}/{name} not found"
            cs = (o.get("status") or {}).get("conditions") or []
            if (need_conds and not cs) or not conds_current(o, cs):
                return None, None, f"not current: {fmt_conds(cs)} (generation " \
                                   f"{o['metadata'].get('generation')})"
            return o, cs, None

        def gateway_listeners_conditions(one=None, k="Gateway"):
            if k == "Gateway":
                g, err = gw_common()
            else:  # a ListenerSet: its own conditions must be current
                g, _, err = current(k)
            if err:
                return False, err
            ls = (g.get("status") or {}).get("listeners") or []
            names = [one] if one else chk.get("listeners")
            if names:
                byname = {x.get("name"): x for x in ls}
                for n in names:
                    if n not in byname:
                        return False, f"listener {n} not in status"
                sel = [byname[n] for n in names]
            else:
                sel = ls
                if not sel:
                    return False, "no listener status"
            for x in sel:
                for c in chk["conditions"]:
                    if not cond_match(x.get("conditions"), c):
                        return False, f"listener {x.get('name')}: {fmt_conds(x.get('conditions'))}"
            return True, "ok"

        def gateway_listeners_status(k="Gateway"):
            g, _, err = current(k)
            if err:
                return False, err
            ls = (g.get("status") or {}).get("listeners") or []
            if len(ls) != len(chk["listeners"]):
                return False, f"{len(ls)} listeners in status, want {len(chk['listeners'])}"
            byname = {x.get("name"): x for x in ls}
            for w in chk["listeners"]:
                x = byname.get(w["name"])
                if x is None:
                    return False, f"listener {w['name']} missing"
                if x.get("attachedRoutes") != w.get("attachedRoutes"):
                    return False, f"listener {w['name']} attachedRoutes {x.get('attachedRoutes')}, " \
                                  f"want {w.get('attachedRoutes')}"
                have = [((k.get("group") or "gateway.networking.k8s.io"), k.get("kind"))
                        for k in x.get("supportedKinds") or []]
                wk = w.get("supportedKinds")
                if wk is not None and len(wk) == 0 and have:
                    return False, f"listener {w['name']} supportedKinds {have}, want none"
                for k in wk or []:
                    if ((k.get("group") or "gateway.networking.k8s.io"), k.get("kind")) not in have:
                        return False, f"listener {w['name']} supportedKinds {have} lacks {k}"
                for c in w.get("conditions") or []:
                    if not cond_match(x.get("conditions"), c):
                        return False, f"listener {w['name']}: {fmt_conds(x.get('conditions'))}, " \
                                      f"want {c}"
            return True, "ok"

        def gateway_condition(k="Gateway"):
            _, cs, err = current(k)
            if err:
                return False, err
            for c in chk["conditions"]:
                if not cond_match(cs, c):
                    return False, f"have {fmt_conds(cs)}, want {c}"
            return True, "ok"

        def gateway_attached_listener_sets():
            g, _, err = current("Gateway")
            if err:
                return False, err
            have = (g.get("status") or {}).get("attachedListenerSets")
            if have != chk["count"]:
                return False, f"status.attachedListenerSets {have}, want {chk['count']}"
            return True, "ok"

        def gateway_latest():
            _, _, err = current("Gateway", need_conds=True)
            return (False, err) if err else (True, "ok")

        def gateway_zero_routes():
            g, _, err = current("Gateway")
            if err:
                return False, err
            ls = (g.get("status") or {}).get("listeners") or []
            if not ls or (len(ls) == 1 and ls[0].get("attachedRoutes") == 0):
                return True, "ok"
            return False, f"listeners {[(x.get('name'), x.get('attachedRoutes')) for x in ls]}"

        def gatewayclass_accepted():
            _, cs, err = current("GatewayClass")
            if err:
                return False, err
            for c in cs:
                if c.get("type") == "Accepted" and (chk.get("status") is None or
                                                    c.get("status") == chk["status"]):
                    return True, "ok"
            return False, f"have {fmt_conds(cs)}"

        def gatewayclass_latest():
            _, _, err = current("GatewayClass", need_conds=True)
            return (False, err) if err else (True, "ok")

        def gateway_status_addresses():
            g, err = gw_common()
            if err:
                return False, err
            addrs = (g.get("status") or {}).get("addresses") or []
            if len(addrs) != 1:
                return False, f"status.addresses {addrs}, want exactly [{self.usable_addr}]"
            a = addrs[0]
            if a.get("value") != self.usable_addr or (a.get("type") or "IPAddress") != "IPAddress":
                return False, f"status.addresses {addrs}, want [{self.usable_addr}]"
            return True, "ok"

        def backendtlspolicy_condition():
            # upstream BackendTLSPolicyMustHaveCondition: every ancestor current, then the wanted
            # condition on the ancestor naming the Gateway
            p = self.obj(kind, ns, name)
            if p is None:
                return False, f"{kind} {ns}/{name} not found"
            ancestors = (p.get("status") or {}).get("ancestors") or []
            want = chk["ancestor"]
            for a in ancestors:
                if not conds_current(p, a.get("conditions") or []):
                    return False, f"ancestor conditions not current: {fmt_conds(a.get('conditions'))}"
                ref = a.get("ancestorRef") or {}
                if ref.get("name") != want["name"] or ref.get("namespace") not in \
                        (None, want.get("namespace")):
                    continue
                if all(cond_match(a.get("conditions"), c) for c in chk["conditions"]):
                    return True, "ok"
            return False, f"want {[(c['type'], c['status'], c['reason']) for c in chk['conditions']]}" \
                          f" on ancestor {want['name']}; have " \
                          f"{[((a.get('ancestorRef') or {}).get('name'), fmt_conds(a.get('conditions'))) for a in ancestors]}"

        if t == "backendtlspolicy_latest_observed_generation":
            # upstream BackendTLSPolicyMustHaveLatestConditions: one look, no polling
            p = self.obj(kind, ns, name)
            if p is None:
                raise CaseFailed(f"{kind} {ns}/{name} not found")
            for a in (p.get("status") or {}).get("ancestors") or []:
                if not conds_current(p, a.get("conditions") or []):
                    raise CaseFailed(f"{t} {ns}/{name}: ancestor conditions not current: "
                                     f"{fmt_conds(a.get('conditions'))} generation "
                                     f"{p['metadata'].get('generation')}")
            return

        fns = {
            "backendtlspolicy_condition": backendtlspolicy_condition,
            "gateway_address": lambda: self.gateway_address(ns, name, chk.get("listener_for_port")),
            "route_parents": route_parents,
            "route_condition": route_condition,
            "route_no_accepted_parents": route_no_accepted_parents,
            "route_latest_observed_generation": route_latest,
            "gateway_listeners_conditions": gateway_listeners_conditions,
            "gateway_listener_conditions": lambda: gateway_listeners_conditions(chk["listener"]),
            "gateway_listeners_status": gateway_listeners_status,
            "gateway_condition": gateway_condition,
            "gateway_latest_observed_generation": gateway_latest,
            "gateway_zero_routes": gateway_zero_routes,
            "namespaces_ready": lambda: self.namespaces_ready(chk["namespaces"]),
            "gatewayclass_accepted": gatewayclass_accepted,
            "gatewayclass_latest_observed_generation": gatewayclass_latest,
            "gateway_status_addresses": gateway_status_addresses,
            "gateway_attached_listener_sets": gateway_attached_listener_sets,
            "listenerset_condition": lambda: gateway_condition("ListenerSet"),
            "listenerset_listeners_conditions":
                lambda: gateway_listeners_conditions(k="ListenerSet"),
            "listenerset_listeners_status": lambda: gateway_listeners_status("ListenerSet"),
        }
        if t == "generation_changed":
            before = state.get("generation_before", {}).get((kind, ns, name))
            o = self.obj(kind, ns, name)
            now = (o or {}).get("metadata", {}).get("generation")
            if before is None or now == before:
                raise CaseFailed(f"generation_changed: {kind} {ns}/{name} generation {before} -> "
                                 f"{now}")
            return
        if t not in fns:
            raise CaseFailed(f"check {t} ({chk.get('helper')}) is not implemented by the runner "
                             f"or needs an unsupported kind")
        ok, detail = k8s.wait(fns[t], timeout)
        if not ok:
            raise CaseFailed(f"{t} {kind or ''} {ns or ''}/{name or ''} after {timeout}s: {detail}")

    # --- requests ---------------------------------------------------------------------------

    def target(self, case, r):
        gref = r.get("gateway") or case.get("gateway")
        if gref is None:
            raise CaseFailed("request without a gateway")
        key = (gref["namespace"], gref["name"])
        if key not in self.addresses:
            ok, detail = k8s.wait(lambda: self.gateway_address(key[0], key[1],
                                                               gref.get("listener")),
                                  self.wait_cap(180))
            if not ok:
                raise CaseFailed(f"no address for Gateway {key[0]}/{key[1]}: {detail}")
        addr, port, g = self.addresses[key]
        if gref.get("listener"):
            for ln in (g.get("spec") or {}).get("listeners") or []:
                if ln.get("name") == gref["listener"]:
                    port = ln.get("port")
        if r.get("port"):
            port = r["port"]
        return addr, port

    def run_request(self, case, r, state):
        mode = r["mode"]
        if mode == "websocket_echo":
            return self.run_websocket(case, r)
        addr, port = self.target(case, r)
        req = dict(r["request"])
        exp = r["expect"]
        rid = str(uuid.uuid4())

        def subst(path, u):
            return (path or "").replace("{request_id}", rid).replace("{uuid}", u)

        def expect_for(u):
            e = json.loads(json.dumps(exp))
            br = e.get("backend_request") or {}
            if br.get("path") is not None:
                br["path"] = subst(br["path"], u)
            for m in e.get("mirrored_to") or []:
                m["path"] = subst(m.get("path"), u)
            return e

        u0 = str(uuid.uuid4())
        if mode in ("eventually_consistent", "eventually_consistent_fresh_uuid"):
            deadline = time.time() + self.wait_cap(MAX_TIME_TO_CONSISTENCY)
            streak, last = 0, ""
            while True:
                u = str(uuid.uuid4()) if mode.endswith("fresh_uuid") else u0
                q = dict(req, path=subst(req.get("path"), u))
                e = expect_for(u)
                t0 = time.time()
                res = wire.send(addr, port, q, self.cluster)
                why = wire.judge(res, q, e, self.cluster)
                if why is None and (req.get("tls") or {}).get("require_client_cert_requested"):
                    pass  # Python's ssl cannot tell whether a certificate was requested
                if why is None and e.get("mirrored_to"):
                    why = self.check_mirrors(e["mirrored_to"], t0)
                if why is None:
                    streak += 1
                    if streak >= CONSISTENT:
                        return
                    continue
                streak, last = 0, why
                if time.time() >= deadline:
                    raise CaseFailed(f"request '{r['name']}' ({q.get('method')} "
                                     f"{q.get('host') or addr}:{port}{q.get('path')}) not "
                                     f"consistent in {self.wait_cap(MAX_TIME_TO_CONSISTENCY)}s: "
                                     f"{last}")
                time.sleep(0.1)
        if mode == "expect_failure":
            deadline = time.time() + self.wait_cap(MAX_TIME_TO_CONSISTENCY)
            streak, last = 0, ""
            q = dict(req, path=subst(req.get("path"), u0))
            while True:
                res = wire.send(addr, port, q, self.cluster)
                if res.status == 200:
                    raise CaseFailed(f"request '{r['name']}' answered 200 (must fail)")
                if res.error is None and res.status not in (408, 504) and \
                        res.status not in (exp.get("status_not_in") or []):
                    streak += 1
                    if streak >= CONSISTENT:
                        return
                    continue
                streak, last = 0, repr(res)
                if time.time() >= deadline:
                    raise CaseFailed(f"request '{r['name']}' expect_failure: {last}")
                time.sleep(0.1)
        if mode == "expect_tls_failure":
            deadline = time.time() + self.wait_cap(MAX_TIME_TO_CONSISTENCY)
            streak, last = 0, ""
            q = dict(req, path=subst(req.get("path"), u0))
            while True:
                res = wire.send(addr, port, q, self.cluster)
                if res.error is not None:
                    streak += 1
                    if streak >= CONSISTENT:
                        return
                    continue
                streak, last = 0, repr(res)
                if time.time() >= deadline:
                    raise CaseFailed(f"request '{r['name']}' must fail in TLS, got {last}")
                time.sleep(0.1)
        if mode == "repeat_backend_header_matches_pod":
            q = dict(req, path=subst(req.get("path"), u0))
            for i in range(r.get("repeat", {}).get("count", 100)):
                res = wire.send(addr, port, q, self.cluster)
                if res.error:
                    raise CaseFailed(f"request {i}: transport error {res.error}")
                j = wire.echo_json(res) or {}
                vals = {k.lower(): v for k, v in (j.get("headers") or {}).items()}.get("backend")
                if not isinstance(vals, list) or len(vals) != 1:
                    raise CaseFailed(f"request {i}: Backend header values {vals!r} ({res!r})")
                if not str(j.get("pod", "")).startswith(vals[0]):
                    raise CaseFailed(f"request {i}: pod {j.get('pod')!r} does not start with "
                                     f"{vals[0]!r}")
            return
        if mode == "weighted_distribution":
            return self.run_weighted(addr, port, r)
        if mode == "mirror_percentage":
            return self.run_mirror_percentage(addr, port, r)
        raise CaseFailed(f"request mode {mode} not implemented by the runner")

    def run_websocket(self, case, r):
        addr, port = self.target(case, dict(r, port=None))
        req = r["request"]
        path = "/" + req["url"].split("/", 3)[3] if req["url"].count("/") >= 3 else "/"
        origin = req.get("origin", "").replace("{test_name}", case["name"])
        msgs = []
        for m in req.get("messages") or []:
            if m.get("type") == "text":
                msgs.append((1, m["data"].encode()))
            else:
                msgs.append((2, bytes(m.get("data_bytes") or [])))
        deadline = time.time() + self.wait_cap(MAX_TIME_TO_CONSISTENCY)
        streak, last = 0, ""
        while True:
            why = wire.websocket_echo(addr, port, path, origin, msgs)
            if why is None:
                streak += 1
                if streak >= CONSISTENT:
                    return
                continue
            streak, last = 0, why
            if time.time() >= deadline:
                raise CaseFailed(f"websocket '{r['name']}': {last}")
            time.sleep(0.1)

    def _parallel(self, n, conc, fn):
        out = [None] * n
        idx = iter(range(n))
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    i = next(idx, None)
                if i is None:
                    return
                out[i] = fn(i)
        ts = [threading.Thread(target=worker) for _ in range(conc)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return out

    def run_weighted(self, addr, port, r):
        d = r["distribution"]
        weights = d["expected_weights"]
        total_w = sum(weights.values())
        last = ""
        for attempt in range(d.get("max_attempts", 10)):
            def one(i):
                q = dict(r["request"])
                if d.get("random_x_jitter_header") and random.random() < 0.5:
                    q["headers"] = dict(q.get("headers") or {},
                                        **{"X-Jitter": str(random.randrange(10000))})
                res = wire.send(addr, port, q, self.cluster)
                why = wire.judge(res, q, r["expect"], self.cluster)
                if why:
                    return ("error", why)
                pod = (wire.echo_json(res) or {}).get("pod", "")
                return ("ok", "-".join(pod.split("-")[:-2]))
            res = self._parallel(d["total_requests"], d.get("concurrency", 10), one)
            errs = [x[1] for x in res if x[0] == "error"]
            if errs:
                last = f"{len(errs)} bad responses, e.g. {errs[0]}"
                continue
            counts = {}
            for _, b in res:
                counts[b] = counts.get(b, 0) + 1
            bad = [b for b in counts if b not in weights]
            if bad:
                last = f"unexpected backends {bad}"
                continue
            ok = True
            for b, w in weights.items():
                share = counts.get(b, 0) / len(res)
                want = w / total_w
                seen = counts.get(b, 0)
                if (w > 0 and seen == 0) or (w == 0 and seen > 0) or \
                        abs(share - want) > d.get("tolerance", 0.05):
                    ok = False
                    last = f"distribution {counts}, want weights {weights}"
            if ok:
                return
        raise CaseFailed(f"weighted '{r['name']}': {last}")

    def echo_logs(self, backend, ns):
        out = []
        for (pns, dep), procs in self.cluster.pods.items():
            if pns == ns and dep == backend:
                for p in procs:
                    out.append(svtest.read_log(p))
        return out

    def check_mirrors(self, mirrors, t0):
        deadline = time.time() + 10.0
        while True:
            missing = []
            for m in mirrors:
                line = f"Echoing back request made to {m['path']} to client"
                if not any(line in log for log in self.echo_logs(m["backend"], m["namespace"])):
                    missing.append(m["backend"])
            if not missing:
                return None
            if time.time() >= deadline:
                return f"mirror to {missing} not seen in 10 s"
            time.sleep(0.2)

    def run_mirror_percentage(self, addr, port, r):
        d = r["distribution"]
        last = ""
        for attempt in range(d.get("max_attempts", 5)):
            rid = str(uuid.uuid4())
            q = dict(r["request"], path=r["request"]["path"].replace("{request_id}", rid))
            e = json.loads(json.dumps(r["expect"]).replace("{request_id}", rid))

            def one(i):
                res = wire.send(addr, port, q, self.cluster)
                return wire.judge(res, q, e, self.cluster)
            errs = [x for x in self._parallel(d["total_requests"], d.get("concurrency", 10), one)
                    if x]
            if errs:
                last = f"{len(errs)} bad responses, e.g. {errs[0]}"
                time.sleep(d.get("sleep_between_attempts_s", 2))
                continue
            time.sleep(1.0)
            ok = True
            for m in e.get("mirrored_to") or []:
                line = f"Echoing back request made to {m['path']} to client"
                n = sum(log.count(line) for log in self.echo_logs(m["backend"], m["namespace"]))
                total = d["total_requests"]
                p = m["percent"] / 100.0
                sd = (total * p * (1 - p)) ** 0.5
                if abs(n - total * p) > d.get("tolerance_std_devs", 3.0) * max(sd, 1.0):
                    ok = False
                    last = f"{m['backend']} saw {n} of {total} mirrored, want ~{total * p:.0f}"
            if ok:
                return
            time.sleep(d.get("sleep_between_attempts_s", 2))
        raise CaseFailed(f"mirror percentage '{r['name']}': {last}")

    # --- mutations --------------------------------------------------------------------------

    def mutate(self, m, state):
        act = m["action"]
        kind = m.get("kind")
        try:
            kd = k8s.kind_by_name(kind)
        except k8s.UnknownKind:
            raise CaseFailed(f"mutation {m['step']}: fake API server has no kind {kind}")
        ns = m.get("namespace") if kd.namespaced else None
        if act == "patch":
            before = self.cluster.get(kd, ns, m["name"])
            state.setdefault("generation_before", {})[(kind, ns, m["name"])] = \
                (before or {}).get("metadata", {}).get("generation")
            patch = (m.get("patch") or {}).get("json_merge_patch")
            desc = (m.get("patch") or {}).get("description", "")
            rm = re.match(r"^remove (spec(?:\.[A-Za-z]+)+)\[(\d+)\]", desc)
            if patch is None and rm:
                ptr = "/" + rm.group(1).replace(".", "/") + "/" + rm.group(2)
                resp = self.cluster.api.patch(k8s.obj_path(kd, ns, m["name"]),
                                              [{"op": "remove", "path": ptr}], kind="json")
                if resp.status != 200:
                    raise CaseFailed(f"mutation {m['step']}: json patch {resp.status} "
                                     f"{resp.raw[:200]!r}")
                self.cluster.sync_workloads()
                return
            if patch is None and desc.startswith("remove the unusable address") and before:
                unusable = f"127.{self.cluster.net}.0.99"
                keep = [a for a in (before.get("spec") or {}).get("addresses") or []
                        if a.get("value") != unusable]
                patch = {"spec": {"addresses": keep}}
            if before is not None:
                state.setdefault("original", {}).setdefault((kind, ns, m["name"]), before)
            orig = state.get("original", {}).get((kind, ns, m["name"])) or {}
            ak = re.match(r"^data\['([^']+)'\] := original .* again$", desc)
            if patch is None and ak and (kind, ns, m["name"], ak.group(1)) in state.get(
                    "copied", {}):
                patch = {"data": {ak.group(1): state["copied"][(kind, ns, m["name"],
                                                                ak.group(1))]}}
            if (patch is None and desc.startswith("restore the original caCertificateRefs")
                    and orig):
                refs = ((orig.get("spec") or {}).get("validation") or {}).get(
                    "caCertificateRefs")
                if refs is not None:
                    patch = {"spec": {"validation": {"caCertificateRefs": refs}}}
            if patch is None:
                raise CaseFailed(f"mutation {m['step']}: runner cannot perform "
                                 f"'{m['patch'].get('description')}'")
            resp = self.cluster.api.patch(k8s.obj_path(kd, ns, m["name"]), patch, kind="merge")
            if resp.status != 200:
                raise CaseFailed(f"mutation {m['step']}: patch {resp.status} {resp.raw[:200]!r}")
        elif act == "delete":
            self.cluster.delete(kd, ns, m["name"])
        elif act == "create":
            obj = m.get("object") or {}
            data = dict(obj.get("data") or {})
            for key, v in data.items():
                # "<copy of ConfigMap NS/NAME data['KEY']>": the value of an existing object
                cp = re.match(r"^<copy of (\w+) ([\w.-]+)/([\w.-]+) data\['([^']+)'\]>$",
                              v) if isinstance(v, str) else None
                if cp:
                    src = self.cluster.get(k8s.kind_by_name(cp.group(1)), cp.group(2),
                                           cp.group(3))
                    val = ((src or {}).get("data") or {}).get(cp.group(4))
                    if val is not None:
                        data[key] = val
                        state.setdefault("copied", {})[(kind, ns, m["name"], key)] = val
            if any(isinstance(v, str) and v.startswith("<") for v in data.values()):
                raise CaseFailed(f"mutation {m['step']}: runner cannot build {kind} "
                                 f"{ns}/{m['name']}")
            if data:
                obj = dict(obj, data=data)
            obj = dict(obj, apiVersion=m["apiVersion"], kind=kind,
                       metadata={"name": m["name"], "namespace": ns})
            self.cluster.apply(obj)
            state["created"].append((kd, ns, m["name"], None))
        elif act == "patch_endpointslices":
            pods = self.cluster.pods.get((ns, "infra-backend-v1"), [])
            for name in m["names"]:
                s = self.cluster.get(kd, ns, name)
                if s is None:
                    raise CaseFailed(f"EndpointSlice {ns}/{name} not found")
                if s.get("addressType") != "IPv4":
                    continue  # no IPv6 pods here: left untouched, as upstream does
                s["endpoints"] = [{"addresses": [p.addr],
                                   "conditions": {"ready": True, "serving": True,
                                                  "terminating": False},
                                   "nodeName": "conformance-node",
                                   "targetRef": {"kind": "Pod", "name": p.pod, "namespace": ns,
                                                 "uid": str(uuid.uuid4())}} for p in pods]
                resp = self.cluster.api.update(k8s.obj_path(kd, ns, name), s)
                if resp.status != 200:
                    raise CaseFailed(f"EndpointSlice {ns}/{name} update {resp.status}")
        else:
            raise CaseFailed(f"mutation action {act} not implemented")
        self.cluster.sync_workloads()

    # --- one case ---------------------------------------------------------------------------

    def run_case(self, case):
        state = {"created": []}
        self.addresses = {}
        try:
            if not self.gateway_alive():
                # a crash fails the case it happened in; later cases get a fresh process
                self.log(f"serval-gateway exited ({self.gw.returncode}); restarting")
                self.crashes += 1
                self.start_gateway()
            for mf in case["manifests"]:
                for obj in k8s.load_manifest(os.path.join(self.corpus, mf)):
                    obj = k8s.prepare(obj)
                    self.fill_placeholders(obj)
                    try:
                        kd, prev = self.cluster.apply(obj)
                    except k8s.UnknownKind as e:
                        raise CaseFailed(f"{mf}: kind {e} is not supported by the fake API server "
                                         "(and not by serval-gateway)")
                    ns = obj["metadata"].get("namespace") if kd.namespaced else None
                    state["created"].append((kd, ns, obj["metadata"]["name"], prev))
            for n in self.cluster.sync_workloads():
                self.log(f"{case['name']}: {n}")
            for chk in case["status_checks"]:
                self.check(chk, state)
            for r in case["requests"]:
                self.run_request(case, r, state)
            for m in case["mutations"]:
                self.mutate(m, state)
                for chk in m.get("status_checks") or []:
                    self.check(chk, state)
                for r in m.get("requests") or []:
                    self.run_request(case, r, state)
            return "pass", ""
        except CaseSkipped as e:
            return "skip", str(e)
        except CaseFailed as e:
            reason = str(e)
            if not self.gateway_alive():
                reason += f" [serval-gateway exited with {self.gw.poll()}; log " \
                          f"{self.gw.log_path}]"
            return "fail", reason
        except Exception as e:  # a runner bug must not end the run
            return "fail", f"runner error: {type(e).__name__}: {e} " + \
                traceback.format_exc().strip().split("\n")[-3]
        finally:
            self.cleanup(state)

    def fill_placeholders(self, obj):
        """Upstream's applier replaces PLACEHOLDER_USABLE_ADDRS / PLACEHOLDER_UNUSABLE_ADDRS with
        the suite's UsableNetworkAddresses / UnusableNetworkAddresses (type IPAddress). Usable
        here: an address of the gateway's pool (or --bind without a pool); unusable: another
        loopback address outside both."""
        addrs = (obj.get("spec") or {}).get("addresses")
        if not addrs:
            return
        out = []
        for a in addrs:
            v = a.get("value")
            if v == "PLACEHOLDER_USABLE_ADDRS":
                out.append({"type": "IPAddress", "value": self.usable_addr})
            elif v == "PLACEHOLDER_UNUSABLE_ADDRS":
                out.append({"type": "IPAddress", "value": f"127.{self.cluster.net}.0.99"})
            else:
                out.append(a)
        obj["spec"]["addresses"] = out

    def cleanup(self, state):
        for kd, ns, name, prev in reversed(state["created"]):
            try:
                if prev is not None:
                    self.cluster.restore(kd, prev)
                else:
                    self.cluster.delete(kd, ns, name)
            except (OSError, RuntimeError) as e:
                self.log(f"cleanup {kd.kind} {ns}/{name}: {e}")
        # namespaces take a moment to finalize; wait so the next case starts clean
        nk = k8s.kind_by_name("Namespace")
        for kd, ns, name, prev in state["created"]:
            if kd is nk and prev is None:
                k8s.wait(lambda: (self.cluster.get(nk, None, name) is None, ""), 15)
        try:
            self.cluster.sync_workloads()
        except (OSError, RuntimeError) as e:
            self.log(f"cleanup sync: {e}")

    # --- whole run --------------------------------------------------------------------------

    def run(self, cases):
        for case in cases:
            missing = [f for f in case["features"] if f not in CLAIMED]
            t0 = time.time()
            notes = case.get("notes") or ""
            if "needs-cluster" in notes and "needs-cluster (partially)" not in notes:
                result, reason = "skip", notes[notes.index("needs-cluster"):][:240]
            elif missing and not self.args.all_features:
                result, reason = "fail", "not run: feature(s) not claimed: " + ", ".join(missing)
            else:
                result, reason = self.run_case(case)
            dt = time.time() - t0
            self.results.append({"name": case["name"], "features": case["features"],
                                 "result": result, "reason": reason, "seconds": dt,
                                 "claimed": not missing})
            mark = {"pass": "ok", "fail": "not ok", "skip": "skip"}[result]
            print(f"{mark} - {case['name']} ({dt:.1f}s){': ' + reason if reason else ''}",
                  flush=True)


def write_table(results, path):
    lines = ["| case | result | seconds | reason |", "| --- | --- | --- | --- |"]
    for r in results:
        reason = r["reason"].replace("|", "\\|").replace("\n", " ")
        if len(reason) > 400:
            reason = reason[:400] + "..."
        lines.append(f"| {r['name']} | {r['result']} | {r['seconds']:.1f} | {reason} |")
    feats = {}
    for r in results:
        for f in r["features"]:
            d = feats.setdefault(f, {"pass": 0, "fail": 0, "skip": 0})
            d[r["result"]] += 1
    lines += ["", "| feature | claimed | passed | failed | skipped |", "| --- | --- | --- | --- | --- |"]
    for f in sorted(feats, key=lambda x: (-sum(feats[x].values()), x)):
        d = feats[f]
        lines.append(f"| {f} | {'yes' if f in CLAIMED else 'no'} | {d['pass']} | {d['fail']} | "
                     f"{d['skip']} |")
    tot = {k: sum(1 for r in results if r["result"] == k) for k in ("pass", "fail", "skip")}
    lines += ["", f"Total: {len(results)} cases, {tot['pass']} passed, {tot['fail']} failed, "
                  f"{tot['skip']} skipped."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def _yq(s):
    return json.dumps(s)


def write_report(results, path, corpus):
    """build/conformance-report.yaml in the shape of upstream's ConformanceReport
    (apis/v1 ConformanceReport: implementation, gatewayAPIVersion, mode, profiles[])."""
    try:
        with open(os.path.join(corpus, "source.json")) as f:
            src = json.load(f)
    except (OSError, ValueError):
        src = {}
    version = "unknown"
    try:
        with open(os.path.join(ROOT, "VERSION")) as f:
            version = f.read().strip()
    except OSError:
        pass

    def profile(name, core_feats, ext_feats, select):
        # like upstream: only the tests of claimed features are run and counted; the rest shows
        # up as unsupportedFeatures (the table counts them as failed)
        rs = [r for r in results if select(r) and r["claimed"]]
        core = [r for r in rs if set(r["features"]) <= core_feats]
        ext = [r for r in rs if r not in core]

        def block(rs2, ind):
            p = sum(1 for r in rs2 if r["result"] == "pass")
            f = [r["name"] for r in rs2 if r["result"] == "fail"]
            s = [r["name"] for r in rs2 if r["result"] == "skip"]
            result = "failure" if f else ("partial" if s else "success")
            out = [f"{ind}result: {result}",
                   f"{ind}statistics:", f"{ind}  Passed: {p}", f"{ind}  Failed: {len(f)}",
                   f"{ind}  Skipped: {len(s)}"]
            if f:
                out.append(f"{ind}failedTests:")
                out += [f"{ind}- {n}" for n in f]
            if s:
                out.append(f"{ind}skippedTests:")
                out += [f"{ind}- {n}" for n in s]
            return out
        sup = sorted(f for f in set(CLAIMED) | ext_feats if f in CLAIMED and f not in CORE and
                     (f in ext_feats or name == "GATEWAY-HTTP"))
        unsup = sorted(f for f in ext_feats if f not in CLAIMED)
        out = [f"- name: {name}", "  core:"] + block(core, "    ") + ["  extended:"] + \
            block(ext, "    ")
        out.append("    supportedFeatures:" + ("" if sup else " []"))
        out += [f"    - {f}" for f in sup]
        out.append("    unsupportedFeatures:" + ("" if unsup else " []"))
        out += [f"    - {f}" for f in unsup]
        return out

    all_feats = set(f for r in results for f in r["features"])
    http_ext = {f for f in all_feats if f not in CORE and f not in GATEWAY_TLS_FEATURES}
    lines = ["apiVersion: gateway.networking.k8s.io/v1", "kind: ConformanceReport",
             f"date: {_yq(time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))}",
             f"gatewayAPIVersion: {_yq(src.get('commit', src.get('version', 'unknown')))}",
             "gatewayAPIChannel: experimental",
             "implementation:", "  organization: serval", "  project: serval-gateway",
             "  url: https://example.invalid/serval-gateway",
             f"  version: {_yq(version)}", "  contact: []",
             "mode: default", "profiles:"]
    lines += profile("GATEWAY-HTTP", CORE, http_ext,
                     lambda r: not (set(r["features"]) & GATEWAY_TLS_FEATURES))
    tls_rs = [r for r in results if set(r["features"]) & GATEWAY_TLS_FEATURES]
    if tls_rs:
        lines += profile("GATEWAY-TLS", CORE, GATEWAY_TLS_FEATURES,
                         lambda r: bool(set(r["features"]) & GATEWAY_TLS_FEATURES))
    lines.append("succeededProvisionalTests: []")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", help="run only this case (repeatable)")
    ap.add_argument("--corpus", help="corpus folder (default ../shared/conformance)")
    ap.add_argument("--all-features", action="store_true",
                    help="also run cases whose features the project does not claim")
    ap.add_argument("--max-wait", type=float, default=0,
                    help="cap every upstream timeout at this many seconds (0 = upstream's)")
    ap.add_argument("--expected", help="fail (exit 1) when a case listed here does not pass")
    ap.add_argument("--report", default=os.path.join(ROOT, "build", "conformance-report.yaml"))
    ap.add_argument("--table", default=os.path.join(ROOT, "build", "conformance-table.md"))
    ap.add_argument("--gateway-arg", action="append", help="extra serval-gateway argument")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.corpus = find_corpus(args.corpus)
    if args.corpus is None:
        print("conformance corpus not found (../shared/conformance); nothing to run")
        return 0
    with open(os.path.join(args.corpus, "cases.json")) as f:
        cases = json.load(f)
    if args.case:
        names = set(args.case)
        unknown = names - {c["name"] for c in cases}
        if unknown:
            print(f"unknown case(s): {sorted(unknown)}", file=sys.stderr)
            return 2
        cases = [c for c in cases if c["name"] in names]
    expected = []
    if args.expected and os.path.exists(args.expected):
        with open(args.expected) as f:
            expected = [ln.split("#")[0].strip() for ln in f if ln.split("#")[0].strip()]
    os.makedirs(os.path.dirname(args.report), exist_ok=True)
    runner = Runner(args)
    t0 = time.time()
    try:
        ok, detail = runner.setup()
        if not ok:
            print(f"# setup: base Gateways not ready: {detail}", flush=True)
        runner.run(cases)
    except (RuntimeError, OSError) as e:
        print(f"setup failed: {e}", file=sys.stderr)
        runner.stop()
        return 2
    finally:
        if runner.gw is not None and args.keep:
            print(f"# gateway log: {runner.gw.log_path}; work folder {runner.workdir}")
    runner.stop()
    table = write_table(runner.results, args.table)
    write_report(runner.results, args.report, args.corpus)
    print(table.split("\n\n")[-1])
    if runner.crashes:
        print(f"# serval-gateway exited {runner.crashes} time(s) during the run and was restarted")
    print(f"# {time.time() - t0:.0f}s; table {args.table}; report {args.report}")
    ran = {r["name"]: r["result"] for r in runner.results}
    regress = [n for n in expected if n in ran and ran[n] != "pass"]
    if regress:
        print(f"REGRESSION: expected to pass but did not: {', '.join(regress)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
