#!/usr/bin/python3
"""A fake Kubernetes API server for serval-gateway tests (Python 3 standard library only).

It speaks the wire protocol of kube-apiserver closely enough for our C client and for a real
kubectl: HTTPS (TLS 1.2/1.3, HTTP/1.1 only, no ALPN h2), bearer-token auth, discovery, CRUD with
resourceVersion/generation/uid semantics, LIST pagination, WATCH streams with bookmarks, 410 after a
simulated compaction, 409 on conflicts, the /status subresource, patches, and fault injection on a
separate plain-HTTP admin port.

Usage
-----
    fake_apiserver.py --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --state-dir DIR \
        [--token-file FILE] [--kubeconfig-out FILE] [--log FILE] [--bookmark-interval S]

Port 0 picks a free port. When both listeners are up the server prints one line
"ready https://127.0.0.1:PORT admin http://127.0.0.1:APORT" and writes DIR/ready.json:
{"port", "admin_port", "server", "admin", "ca", "kubeconfig", "token_file", "pid"}.
DIR also receives ca.crt/ca.key/server.crt/server.key (ECDSA P-256 by default, --key-type rsa for
RSA 2048; SAN IP 127.0.0.1, DNS localhost, plus every --san), kept across restarts with the same
DIR unless --regen-certs. Without --token-file a random token is written to DIR/token. The token
file is re-read on every request (so tests can rotate it); a request without the expected
"Authorization: Bearer <token>" gets 401 with a Status body. --kubeconfig-out writes a kubeconfig
(YAML) with server, certificate-authority-data, the current token (or `tokenFile:` with
--kubeconfig-token-file) and a context "fake" whose namespace is "default" (default path
DIR/kubeconfig). Other options: --persist (objects and history survive a restart with the same
DIR, saved on SIGTERM, as etcd would keep them), --response-encoding, --namespace-finalize-delay,
--no-default-namespaces (otherwise default, kube-system, kube-public, kube-node-lease exist),
--without-kind PLURAL (repeatable: that resource is not installed, as without its CRD).

Kinds: v1 namespaces, services, secrets, configmaps, endpoints, serviceaccounts; apps/v1
deployments; policy/v1 poddisruptionbudgets; discovery.k8s.io/v1 endpointslices;
coordination.k8s.io/v1 leases; rbac.authorization.k8s.io/v1 (cluster)roles and
(cluster)rolebindings; gateway.networking.k8s.io v1 gatewayclasses, gateways, httproutes,
grpcroutes, referencegrants, listenersets (v1beta1: gatewayclasses, gateways, httproutes,
referencegrants, one storage shared by both versions) and v1alpha2 tlsroutes. Nothing runs behind them (no
controllers, no pods); `kubectl apply -k deploy/` stores what it is given.

Semantics (what a client can rely on)
-------------------------------------
- One global, monotonically increasing resourceVersion (a decimal string); compare for equality.
- Create: metadata.uid, creationTimestamp (RFC 3339, seconds, Z), resourceVersion; generation = 1
  for kinds that have one (Gateway API kinds, EndpointSlice, Deployment); status is dropped on
  create for kinds with a status subresource, then schema defaults apply (GatewayClass/Gateway get
  the CRD's "Pending / Waiting for controller" conditions). A subset of the Gateway API CRD
  defaults is applied (HTTPRoute/GRPCRoute parentRefs group/kind, rules/matches default to
  PathPrefix "/", backendRefs group ""/kind Service/weight 1; Gateway listeners allowedRoutes
  from Same, tls.mode Terminate), plus Service (ClusterIP allocation, protocol TCP, targetPort)
  and Secret (type Opaque, stringData folded into data) defaults.
- resourceVersion set on create: 500 "resourceVersion should not be set on objects to be created".
- Namespaced create in a missing namespace: 404 NotFound for the namespace (like the real server).
  Namespaces get the label kubernetes.io/metadata.name=<name>. Deleting a namespace marks it
  Terminating (deletionTimestamp, status.phase; creates in it get 403) and after
  --namespace-finalize-delay seconds (default 3) deletes its contents, then the namespace.
- Update (PUT): 404 if absent; 409 Conflict when metadata.resourceVersion is stale; custom
  resources (Gateway API kinds) require metadata.resourceVersion (422 otherwise), built-ins take an
  unconditional update. generation is bumped only when something outside metadata and status
  changes. An update that changes nothing keeps the resourceVersion and emits no watch event.
- The main resource ignores status changes for kinds with a status subresource; PUT/PATCH on
  .../status changes only status (a PUT without status deletes it, then defaults apply).
- PATCH: application/merge-patch+json (RFC 7386), application/json-patch+json (RFC 6902; a failing
  "test" is 422), application/strategic-merge-patch+json (415 on custom resources; on built-in
  kinds a small strategic merge: list merge keys for containers/env/volumes/conditions, ports of a
  Service's spec (port) and of a container (containerPort), every other list atomic (replaced
  whole: EndpointSlice ports and endpoints, Endpoints subsets), the $patch, $setElementOrder,
  $retainKeys and $deleteFromPrimitiveList directives), and
  application/apply-patch+yaml (server-side apply, JSON body only, requires fieldManager; applied
  as a merge without field ownership; creates when absent). A patch body carrying
  metadata.resourceVersion is a precondition (409 when stale).
- dryRun=All on writes computes and returns the result without storing it.
- DELETE returns the deleted object (200); the DELETED watch event carries it with a new RV.
  DeleteOptions preconditions (uid, resourceVersion) are honoured (409).
- LIST: sorted by namespace/name; labelSelector (=, ==, !=, exists, !key, in, notin), fieldSelector
  (metadata.name, metadata.namespace; type for secrets; =, ==, !=; other fields 400);
  limit/continue with a snapshot: every page comes from the first page's RV, the list RV is the
  same on every page; remainingItemCount when no selector. resourceVersion with continue is 400.
  An expired continue token (after a compaction or the expire-continue fault) is 410 Expired with a
  fresh, inconsistent continue token in the Status metadata. resourceVersionMatch=Exact with an
  older RV is rebuilt from the history (410 when compacted). resourceVersion=0 ignores limit (the
  watch cache does). Items of built-in lists carry no apiVersion/kind (like the real server's
  typed encoding); custom resource items do.
- Bodies (not watches) larger than 2048 bytes are sent with Transfer-Encoding: chunked, smaller
  ones with Content-Length, as Go's net/http does (--response-encoding / admin /config
  response_encoding: auto|length|chunked). With Accept-Encoding: gzip a body over 128 KiB is
  gzipped (Content-Encoding: gzip, chunked); watches never are. HTTP/1.1 keep-alive is
  supported; TCP_NODELAY is set, a request costs well under a millisecond.
- WATCH (?watch=1 or true): 200, chunked, one compact JSON event per line. resourceVersion=N
  replays every change after N from the history; none or 0 first sends synthetic ADDEDs.
  sendInitialEvents=true (+ allowWatchBookmarks) ends the initial ADDEDs with a BOOKMARK annotated
  k8s.io/initial-events-end=true. An RV older than the compaction point gives HTTP 200, one ERROR
  event with a 410 Expired Status ("too old resource version: N (M)") and the end of the stream
  (admin /config watch_expired=http answers a plain HTTP 410 Status instead, as etcd-served
  watches can). Events written together go in one chunk; admin /config watch_chunk_size=N cuts
  the stream into N-byte chunks so that events span chunk boundaries.
  With allowWatchBookmarks=true a BOOKMARK (object of the watched kind with only
  metadata.resourceVersion, plus "creationTimestamp": null for built-in kinds as typed
  objects encode) is sent every --bookmark-interval seconds (default 60). The stream
  ends cleanly after timeoutSeconds (default 1800). Label/field selectors turn MODIFIED into
  ADDED/DELETED when an object enters/leaves the selection.
- Errors are Status objects: {"kind":"Status","apiVersion":"v1","metadata":{},
  "status":"Failure","message":...,"reason":...,"details":{...},"code":N}.
- Only JSON is served (no protobuf, no Table: `kubectl get` prints from the list, no aggregated
  discovery), no managedFields, no finalizers (except the namespace Terminating phase), no
  admission, no schema validation of custom resources, no field ownership for server-side apply.
- Lease MicroTime fields (acquireTime, renewTime) must have exactly six fraction digits and "Z"
  (400 otherwise, as the real server fails to decode them).

kubectl
-------
kubectl 1.32 works for `apply -f` (also --server-side, --dry-run=server), `create -f`,
`replace -f`, `diff -f`, `get -o json|yaml`, `get` (client-side NAME/AGE columns), `delete`
(including its --wait watch on metadata.name), `patch` (also --subresource status), `label`,
`annotate`, `api-resources`, `api-versions`, `version`, `get --raw`, `get all|gateway-api`
(categories). Not supported: the generator commands for built-in kinds (`kubectl create
namespace|configmap|secret ...`) send protobuf bodies, which are answered 415 (kubectl does not
fall back to JSON; write YAML and `apply -f` instead); `explain` (no schemas); `auth can-i` (no
SelfSubjectAccessReview).
Discovery is served unaggregated (plain application/json), which kubectl accepts as the fallback.
What was found by trying: with /openapi/v2 and /openapi/v3 both 404, plain `kubectl apply -f`
fails ("error validating data: failed to download openapi"); only --validate=false works. So
/openapi/v3 serves a minimal document: the index of group-versions and, per group-version, one
PATCH operation per kind carrying x-kubernetes-group-version-kind and a "fieldValidation" query
parameter. That is what kubectl's validation probe (QueryParamVerifierV3) looks for; it then
leaves validation to the server (it sends fieldValidation=Strict, which is accepted and ignored).
The documents hold no schemas, so kubectl falls back to its compiled-in types for strategic
merge patches on built-in kinds; /openapi/v2 stays 404 (kubectl tolerates that). kubectl apply
sends strategic merge patches for built-in kinds and merge patches for Gateway API kinds.

Admin port (plain HTTP, no auth, JSON bodies; for tests)
-------------------------------------------------------
GET  /healthz                      "ok"
GET  /state                        {"rv","compacted_rv","open_watches","port",...}
GET  /requests[?since=N]           {"items":[{seq,time,method,path,query,user_agent,user,client,
                                    verb,group,version,resource,subresource,namespace,name,code,
                                    content_type,watch,authorized}], "next":N}; DELETE clears it
                                    (user: "default" for the token file's token, else the name
                                    given to /tokens; client: peer address)
GET  /objects[?resource=R]         every stored object (storage form, with apiVersion/kind)
POST /fault/drop-watches {"clean":false,"partial":false}  end every open watch now (abrupt
                                    close by default; clean=true sends the final chunk;
                                    partial=true first writes half an event line)
POST /fault/stall {"seconds":N,"scope":"all"|"watch"|"request"}  requests are not answered and
                                    watches send nothing (events are held) for N seconds
POST /fault/errors {"code":500|429|503|504,"count":N,"prefix":"/apis/..","method":"GET",
                    "watch":true|false,"retry_after":S,"close":false}  answer the next N
                                    matching requests (after auth) with that Status (429 and 503
                                    add Retry-After; close adds Connection: close and closes)
POST /fault/malformed {"line":"..."}   write a malformed event line to every open watch
POST /fault/watch-error {"code":410,"reason":"Expired","message":"..."}  send one ERROR event
                                    to every open watch and end those streams
POST /fault/token {"token":"T"} | {"expire":true} | {"reset":true}  override the expected token
                                    (expire = a random token no client has) or go back to the file
POST /fault/compact {"rv":N}       compaction point = N (default: current RV); watches and
                                    continue tokens from older RVs get 410
POST /fault/expire-continue {}     every continue token issued so far is expired (410)
POST /fault/clear {}               remove every fault (and the /rbac setting)
POST /config {"bookmark_interval":S, "response_encoding":"auto"|"length"|"chunked",
              "watch_chunk_size":N, "watch_expired":"event"|"http",
              "disabled_groups":["gateway.networking.k8s.io"]}   (disabled groups vanish from
                                    discovery and their paths are 404, like missing CRDs)
POST /tokens {"tokens":{"gw-a":"T1","gw-b":"T2"}}  more accepted tokens, one per identity, so
                                    the request log tells two clients apart (they survive
                                    /fault/clear; an expire-token fault does not touch them)
POST /rbac {"rules":[{"apiGroups":[""],"resources":["services"],"verbs":["list"]}]}
         | {"serviceAccount":"serval-system/serval-gateway"}  [,"users":["default"]]
         | {"rules":null}           enforce RBAC (403 Forbidden otherwise) on requests of these
                                    users (default: the token file's): the given rules, or the
                                    rules that the stored ClusterRoleBindings/RoleBindings grant
                                    to that ServiceAccount (read per request, so `kubectl apply -f
                                    deploy/rbac.yaml` with another token sets them up); discovery
                                    and /version stay open; null = allow all
"""

import argparse
import base64
import bisect
import copy
import datetime
import gzip
import http.server
import json
import os
import random
import re
import secrets
import select
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

MAX_BODY = 16 * 1024 * 1024
# Go's net/http sends Content-Length only when the whole body fits its 2048-byte buffer before
# the handler returns; a larger body goes out chunked (in bufio-sized pieces).
GO_CHUNKING_THRESHOLD = 2048
GO_CHUNK = 4096
# The apiserver gzips a response only when asked and larger than 128 KiB (never a watch).
GZIP_THRESHOLD = 128 * 1024
MAX_LIST = 100000

# --------------------------------------------------------------------------------------------
# Resource table


class Kind:
    def __init__(self, group, versions, plural, kind, namespaced, status=False, generation=False,
                 crd=False, short=(), categories=(), fields=()):
        self.group = group
        self.versions = versions
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.status = status
        self.generation = generation
        self.crd = crd
        self.short = list(short)
        self.categories = list(categories)
        self.fields = set(fields) | {"metadata.name", "metadata.namespace"}
        self.key = (group, plural)

    @property
    def gr(self):
        return self.plural + ("." + self.group if self.group else "")

    def api_version(self, version):
        return version if not self.group else self.group + "/" + version


GW = "gateway.networking.k8s.io"
KINDS = [
    Kind("", ["v1"], "namespaces", "Namespace", False, status=True, short=["ns"],
         fields=["status.phase"]),
    Kind("", ["v1"], "services", "Service", True, status=True, short=["svc"], categories=["all"]),
    Kind("", ["v1"], "secrets", "Secret", True, fields=["type"]),
    Kind("", ["v1"], "configmaps", "ConfigMap", True, short=["cm"]),
    Kind("", ["v1"], "endpoints", "Endpoints", True, short=["ep"]),
    Kind("apps", ["v1"], "deployments", "Deployment", True, status=True, generation=True,
         short=["deploy"], categories=["all"]),
    Kind("discovery.k8s.io", ["v1"], "endpointslices", "EndpointSlice", True, generation=True),
    Kind("coordination.k8s.io", ["v1"], "leases", "Lease", True),
    Kind("", ["v1"], "serviceaccounts", "ServiceAccount", True, short=["sa"]),
    Kind("rbac.authorization.k8s.io", ["v1"], "clusterroles", "ClusterRole", False),
    Kind("rbac.authorization.k8s.io", ["v1"], "clusterrolebindings", "ClusterRoleBinding", False),
    Kind("rbac.authorization.k8s.io", ["v1"], "roles", "Role", True),
    Kind("rbac.authorization.k8s.io", ["v1"], "rolebindings", "RoleBinding", True),
    Kind("policy", ["v1"], "poddisruptionbudgets", "PodDisruptionBudget", True, status=True,
         generation=True, short=["pdb"]),
    Kind(GW, ["v1", "v1beta1"], "gatewayclasses", "GatewayClass", False, status=True,
         generation=True, crd=True, short=["gc"], categories=["gateway-api"]),
    Kind(GW, ["v1", "v1beta1"], "gateways", "Gateway", True, status=True, generation=True,
         crd=True, short=["gtw"], categories=["gateway-api"]),
    Kind(GW, ["v1", "v1beta1"], "httproutes", "HTTPRoute", True, status=True, generation=True,
         crd=True, categories=["gateway-api"]),
    Kind(GW, ["v1"], "grpcroutes", "GRPCRoute", True, status=True, generation=True, crd=True,
         categories=["gateway-api"]),
    Kind(GW, ["v1", "v1beta1"], "referencegrants", "ReferenceGrant", True, generation=True,
         crd=True, short=["refgrant"], categories=["gateway-api"]),
    Kind(GW, ["v1"], "backendtlspolicies", "BackendTLSPolicy", True, status=True, generation=True,
         crd=True, short=["btlspolicy"], categories=["gateway-api"]),
    Kind(GW, ["v1alpha2"], "tlsroutes", "TLSRoute", True, status=True, generation=True, crd=True,
         categories=["gateway-api"]),
    Kind(GW, ["v1"], "listenersets", "ListenerSet", True, status=True, generation=True, crd=True,
         short=["lset"], categories=["gateway-api"]),
]
BY_GVR = {}
BY_KEY = {}
for _k in KINDS:
    BY_KEY[_k.key] = _k
    for _v in _k.versions:
        BY_GVR[(_k.group, _v, _k.plural)] = _k
GROUP_VERSIONS = {}  # group -> [versions], preferred first
for _k in KINDS:
    vs = GROUP_VERSIONS.setdefault(_k.group, [])
    for _v in _k.versions:
        if _v not in vs:
            vs.append(_v)

NS_KIND = BY_KEY[("", "namespaces")]


def drop_kinds(plurals):
    """--without-kind: serve a cluster where these resources (plural names) are not installed
    (a CRD missing): their paths answer 404 and discovery leaves them out."""
    for kd in [k for k in KINDS if k.plural in plurals]:
        KINDS.remove(kd)
        BY_KEY.pop(kd.key, None)
        for v in kd.versions:
            BY_GVR.pop((kd.group, v, kd.plural), None)
    for g in list(GROUP_VERSIONS):
        vs = [v for v in GROUP_VERSIONS[g] if any(k.group == g and v in k.versions for k in KINDS)]
        if vs:
            GROUP_VERSIONS[g] = vs
        else:
            del GROUP_VERSIONS[g]
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# --------------------------------------------------------------------------------------------
# Errors


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None, metadata=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.metadata = metadata or {}

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": dict(self.metadata),
             "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s


def details(kd, name):
    d = {}
    if name:
        d["name"] = name
    if kd.group:
        d["group"] = kd.group
    d["kind"] = kd.plural
    return d


def not_found(kd, name):
    return ApiError(404, "NotFound", f'{kd.gr} "{name}" not found', details(kd, name))


def conflict(kd, name):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {kd.gr} "{name}": the object has been '
                    'modified; please apply your changes to the latest version and try again',
                    details(kd, name))


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def invalid(kd, name, field, value, msg):
    cause = {"reason": "FieldValueInvalid", "message": f"Invalid value: {json.dumps(value)}: {msg}",
             "field": field}
    d = details(kd, name)
    d["kind"] = kd.kind
    d["causes"] = [cause]
    return ApiError(422, "Invalid",
                    f'{kd.kind} "{name}" is invalid: {field}: Invalid value: {json.dumps(value)}: {msg}',
                    d)


# --------------------------------------------------------------------------------------------
# Helpers


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def dump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def obj_key(ns, name):
    return (ns or "") + "/" + name


# --- selectors


def split_top(s):
    """Split a label selector on commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


LABEL_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
LABEL_OP = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
LABEL_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


def parse_label_selector(s):
    reqs = []
    if not s:
        return reqs
    for part in split_top(s)[:100]:
        m = LABEL_SET.match(part)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = LABEL_OP.match(part)
        if m:
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            continue
        m = LABEL_EXISTS.match(part)
        if m:
            reqs.append((m.group(2), "!" if m.group(1) else "exists", set()))
            continue
        raise bad_request(f'unable to parse requirement: invalid label selector "{s}"')
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and not (has and v in vals):
            return False
        if op == "!=" and has and v in vals:
            return False
        if op == "in" and not (has and v in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!" and has:
            return False
    return True


def parse_field_selector(s, kd):
    reqs = []
    if not s:
        return reqs
    for part in s.split(",")[:50]:
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f'invalid selector: \'{s}\'; can\'t understand \'{part}\'')
        field = m.group(1)
        if field not in kd.fields:
            raise bad_request(f'field label not supported: {field}')
        reqs.append((field, m.group(2) == "!=", m.group(3)))
    return reqs


def field_value(obj, field):
    cur = obj
    for p in field.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    return "" if cur is None else str(cur)


def fields_match(reqs, obj):
    for field, neg, val in reqs:
        got = field_value(obj, field)
        if (got == val) == neg:
            return False
    return True


# --- patches


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer: {path}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc, parts):
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in "
                                           f"our request: path not found: /{'/'.join(parts)}")
    return cur


def json_patch(doc, ops):
    """RFC 6902."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be an array of operations")
    doc = copy.deepcopy(doc)
    for op in ops[:10000]:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request("invalid json patch operation")
        kind = op["op"]
        parts = _ptr(op["path"])
        if kind in ("move", "copy"):
            val = copy.deepcopy(_resolve(doc, _ptr(op.get("from", ""))))
            if kind == "move":
                doc = _jp_remove(doc, _ptr(op["from"]))
            doc = _jp_add(doc, parts, val)
        elif kind == "add":
            doc = _jp_add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _jp_remove(doc, parts)
        elif kind == "replace":
            _resolve(doc, parts)
            doc = _jp_remove(doc, parts)
            doc = _jp_add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "test":
            if _resolve(doc, parts) != op.get("value"):
                raise ApiError(422, "Invalid",
                               f"the server rejected our request due to an error in our request: "
                               f"testing value /{'/'.join(parts)} failed: test failed")
        else:
            raise bad_request(f"unexpected json patch operation {kind}")
    return doc


def _jp_add(doc, parts, val):
    if not parts:
        return val
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = val
    elif isinstance(parent, list):
        if last == "-":
            parent.append(val)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), val)
        else:
            raise ApiError(422, "Invalid", f"add operation: index out of range: {last}")
    else:
        raise ApiError(422, "Invalid", "add operation does not apply: doc is missing path")
    return doc


def _jp_remove(doc, parts):
    if not parts:
        return None
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise ApiError(422, "Invalid", f"remove operation does not apply: doc is missing path: "
                                       f"/{'/'.join(parts)}")
    return doc


# Merge keys of the lists that built-in types declare patchStrategy=merge (by field name; "ports"
# is decided by where it stands, see _smp_key). A list not named here is atomic: a strategic merge
# patch replaces it whole, as the real server does for lists without a patch strategy.
SMP_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
            "volumes": "name", "env": "name", "volumeMounts": "mountPath",
            "imagePullSecrets": "name", "conditions": "type", "ownerReferences": "uid",
            "hostAliases": "ip", "topologySpreadConstraints": "topologyKey"}
SMP_PRIMITIVE_MERGE = {"finalizers"}
SMP_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def _smp_key(path):
    """The merge key of the list at <path> (the field names from the object's root), or None for
    an atomic list. "ports" merges by port only in a Service's spec.ports and by containerPort in
    a container; EndpointSlice ports and Endpoints subsets[].ports are +listType=atomic."""
    field = path[-1]
    if field == "ports":
        if path == ("spec", "ports"):
            return "port"
        if len(path) >= 2 and path[-2] in SMP_CONTAINER_LISTS:
            return "containerPort"
        return None
    return SMP_KEYS.get(field)


def strategic_merge(orig, patch, path=()):
    """A small strategic merge patch (the directives kubectl apply sends); <path>: the field names
    from the root down to <patch> (list items add nothing), which decides the lists' merge keys."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = dict(orig) if isinstance(orig, dict) else {}
    orders = {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
        elif k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(out.get(f), list):
                out[f] = [x for x in out[f] if x not in (v or [])]
        elif k == "$retainKeys":
            keep = set(v or []) | {kk for kk in patch if not kk.startswith("$")}
            for kk in list(out):
                if kk not in keep:
                    del out[kk]
        elif k.startswith("$"):
            continue
        elif v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = _smp_list(path + (k,), out[k], v)
        elif isinstance(v, dict):
            r = strategic_merge(out.get(k), v, path + (k,))
            if r is None:
                out.pop(k, None)
            else:
                out[k] = r
        else:
            out[k] = copy.deepcopy(v)
    for f, order in orders.items():
        if isinstance(out.get(f), list) and isinstance(order, list):
            key = _smp_key(path + (f,))

            def ident(x, key=key):
                return x.get(key) if key and isinstance(x, dict) else x
            idx = {json.dumps(ident(o), sort_keys=True): i for i, o in enumerate(order)}
            out[f] = sorted(out[f], key=lambda x: idx.get(json.dumps(ident(x), sort_keys=True),
                                                           len(idx)))
    return out


def _smp_list(path, olist, plist):
    if path[-1] in SMP_PRIMITIVE_MERGE:
        return olist + [x for x in plist if x not in olist]
    key = _smp_key(path)
    if not key or not all(isinstance(x, dict) for x in plist):
        return [strategic_merge(None, x, path) if isinstance(x, dict) else x for x in plist]
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in plist):
        return [x for x in plist if x.get("$patch") != "replace"]
    out = [copy.deepcopy(x) for x in olist]
    for p in plist:
        k = p.get(key)
        pos = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == k), None)
        if p.get("$patch") == "delete":
            if pos is not None:
                del out[pos]
        elif pos is not None:
            out[pos] = strategic_merge(out[pos], p, path)
        else:
            out.append(strategic_merge(None, p, path))
    return out


# --- defaults


def _default_parent_refs(spec):
    for pr in spec.get("parentRefs") or []:
        if isinstance(pr, dict):
            pr.setdefault("group", GW)
            pr.setdefault("kind", "Gateway")


def _default_backend_refs(rule):
    for br in rule.get("backendRefs") or []:
        if isinstance(br, dict):
            br.setdefault("group", "")
            br.setdefault("kind", "Service")
            br.setdefault("weight", 1)


def _pending(types):
    return {"conditions": [{"lastTransitionTime": "1970-01-01T00:00:00Z",
                            "message": "Waiting for controller", "reason": "Pending",
                            "status": "Unknown", "type": t} for t in types]}


def apply_defaults(kd, obj):
    spec = obj.get("spec")
    if kd.plural == "httproutes" and isinstance(spec, dict):
        _default_parent_refs(spec)
        if "rules" not in spec:
            spec["rules"] = [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]
        for rule in spec.get("rules") or []:
            if not isinstance(rule, dict):
                continue
            if "matches" not in rule:
                rule["matches"] = [{"path": {"type": "PathPrefix", "value": "/"}}]
            for m in rule.get("matches") or []:
                if not isinstance(m, dict):
                    continue
                p = m.setdefault("path", {"type": "PathPrefix", "value": "/"})
                if isinstance(p, dict):
                    p.setdefault("type", "PathPrefix")
                    p.setdefault("value", "/")
                for h in (m.get("headers") or []) + (m.get("queryParams") or []):
                    if isinstance(h, dict):
                        h.setdefault("type", "Exact")
            _default_backend_refs(rule)
    elif kd.plural in ("grpcroutes", "tlsroutes") and isinstance(spec, dict):
        _default_parent_refs(spec)
        for rule in spec.get("rules") or []:
            if isinstance(rule, dict):
                _default_backend_refs(rule)
    elif kd.plural in ("gateways", "listenersets"):
        if isinstance(spec, dict):
            for ln in spec.get("listeners") or []:
                if not isinstance(ln, dict):
                    continue
                ar = ln.setdefault("allowedRoutes", {"namespaces": {"from": "Same"}})
                if isinstance(ar, dict):
                    ns = ar.setdefault("namespaces", {"from": "Same"})
                    if isinstance(ns, dict):
                        ns.setdefault("from", "Same")
                if isinstance(ln.get("tls"), dict):
                    ln["tls"].setdefault("mode", "Terminate")
        if "status" not in obj:
            obj["status"] = _pending(["Accepted", "Programmed"])
        if kd.plural == "listenersets" and isinstance(spec, dict) and \
                isinstance(spec.get("parentRef"), dict):
            spec["parentRef"].setdefault("group", GW)
            spec["parentRef"].setdefault("kind", "Gateway")
    elif kd.plural == "gatewayclasses":
        if "status" not in obj:
            obj["status"] = _pending(["Accepted"])
    elif kd.plural == "secrets":
        obj.setdefault("type", "Opaque")
        sd = obj.pop("stringData", None)
        if isinstance(sd, dict):
            data = obj.setdefault("data", {})
            for k, v in sd.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kd.plural == "services" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p:
                    p.setdefault("targetPort", p["port"])
        obj.setdefault("status", {"loadBalancer": {}})
    elif kd.plural == "endpointslices":
        for p in obj.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
    elif kd.plural == "namespaces":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})


def spec_part(kd, obj):
    return {k: v for k, v in obj.items()
            if k not in ("metadata", "apiVersion", "kind") and not (kd.status and k == "status")}


# --------------------------------------------------------------------------------------------
# Store


class Event:
    __slots__ = ("rv", "key", "type", "obj", "prev")

    def __init__(self, rv, key, etype, obj, prev):
        self.rv = rv
        self.key = key
        self.type = etype
        self.obj = obj
        self.prev = prev


class Store:
    def __init__(self):
        self.cond = threading.Condition(threading.RLock())
        self.rv = 0
        self.objects = {}  # kind key -> {nskey -> obj}
        self.history = []
        self.history_rvs = []
        self.compacted_rv = 0
        self.continue_expired_rv = 0
        self.next_ip = 10
        self.ns_finalize_delay = 1.0
        for kd in KINDS:
            self.objects[kd.key] = {}

    def save(self, path):
        """Write objects, history and counters as JSON (atomically)."""
        with self.cond:
            doc = {"rv": self.rv, "compacted_rv": self.compacted_rv,
                   "continue_expired_rv": self.continue_expired_rv, "next_ip": self.next_ip,
                   "objects": {"/".join(k): v for k, v in self.objects.items()},
                   "history": [{"rv": e.rv, "key": list(e.key), "type": e.type, "obj": e.obj,
                                "prev": e.prev} for e in self.history]}
            data = json.dumps(doc, separators=(",", ":"))
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def load(self, path):
        with open(path) as fh:
            doc = json.load(fh)
        with self.cond:
            self.rv = doc["rv"]
            self.compacted_rv = doc["compacted_rv"]
            self.continue_expired_rv = doc["continue_expired_rv"]
            self.next_ip = doc["next_ip"]
            for k, v in doc["objects"].items():
                group, _, plural = k.rpartition("/")
                if (group, plural) in self.objects:
                    self.objects[(group, plural)] = v
            self.history = [Event(e["rv"], tuple(e["key"]), e["type"], e["obj"], e["prev"])
                            for e in doc["history"]]
            self.history_rvs = [e.rv for e in self.history]

    # All methods below run with self.cond held by the caller.

    def _bump(self):
        self.rv += 1
        return self.rv

    def _record(self, kd, etype, obj, prev):
        ev = Event(self.rv, kd.key, etype, obj, prev)
        self.history.append(ev)
        self.history_rvs.append(self.rv)
        self.cond.notify_all()

    def get(self, kd, ns, name):
        return self.objects[kd.key].get(obj_key(ns, name))

    def state_at(self, kd, rv):
        """The kind's objects as of resourceVersion rv, rebuilt from the history."""
        if rv >= self.rv:
            return dict(self.objects[kd.key])
        state = {}
        end = bisect.bisect_right(self.history_rvs, rv)
        for ev in self.history[:end]:
            if ev.key != kd.key:
                continue
            m = ev.obj["metadata"]
            k = obj_key(m.get("namespace"), m["name"])
            if ev.type == "DELETED":
                state.pop(k, None)
            else:
                state[k] = ev.obj
        return state

    def validate_meta(self, kd, name, obj):
        if not name:
            raise invalid(kd, name, "metadata.name", "", "name or generateName is required")
        rx, what = (DNS1123_LABEL, "label") if kd.plural in ("namespaces", "services") else \
            (DNS1123_SUB, "subdomain")
        if not rx.match(name) or len(name) > (63 if what == "label" else 253):
            raise invalid(kd, name, "metadata.name", name,
                          f"a lowercase RFC 1123 {what} must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric "
                          "character")
        if kd.plural == "leases":
            for f in ("acquireTime", "renewTime"):
                v = (obj.get("spec") or {}).get(f)
                if v is not None and not (isinstance(v, str) and MICROTIME.match(v)):
                    raise bad_request(f'Lease in version "v1" cannot be handled as a Lease: '
                                      f'parsing time "{v}" as "2006-01-02T15:04:05.000000Z07:00": '
                                      f'cannot parse')

    def create(self, kd, ns, body, dry_run=False):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        obj.pop("apiVersion", None)
        obj.pop("kind", None)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if kd.namespaced:
            bns = meta.get("namespace")
            if bns and bns != ns:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            meta["namespace"] = ns
            nso = self.get(NS_KIND, "", ns)
            if not nso:
                raise not_found(NS_KIND, ns)
            if nso["metadata"].get("deletionTimestamp"):
                raise ApiError(403, "Forbidden", f'{kd.gr} "{meta.get("name") or ""}" is '
                               f'forbidden: unable to create new content in namespace {ns} '
                               'because it is being terminated',
                               dict(details(kd, meta.get("name")), causes=[{
                                   "reason": "NamespaceTerminating",
                                   "message": f"namespace {ns} is being terminated",
                                   "field": "metadata.namespace"}]))
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + "".join(
                random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            meta["name"] = name
        self.validate_meta(kd, name, obj)
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "Internal error occurred: resourceVersion should "
                                                 "not be set on objects to be created")
        if self.get(kd, ns, name):
            raise ApiError(409, "AlreadyExists", f'{kd.gr} "{name}" already exists',
                           details(kd, name))
        for f in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "managedFields",
                  "selfLink"):
            meta.pop(f, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if kd.generation:
            meta["generation"] = 1
        if kd.status:
            obj.pop("status", None)
        if kd.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        if kd.plural == "services":
            spec = obj.setdefault("spec", {})
            if not spec.get("clusterIP") and spec.get("type", "ClusterIP") != "ExternalName":
                ip = f"10.96.{(self.next_ip >> 8) & 255}.{self.next_ip & 255}"
                self.next_ip += 1
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
            if spec.get("clusterIP") and spec.get("clusterIP") != "None":
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        apply_defaults(kd, obj)
        if dry_run:
            meta["resourceVersion"] = str(self.rv)
            return obj
        meta["resourceVersion"] = str(self._bump())
        self.objects[kd.key][obj_key(ns, name)] = obj
        self._record(kd, "ADDED", obj, None)
        return obj

    def update(self, kd, ns, name, body, sub=None, dry_run=False, require_rv=None):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        cur = self.get(kd, ns, name)
        if cur is None:
            raise not_found(kd, name)
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name "
                              f"on the URL ({name})")
        if kd.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not match the namespace "
                              "sent on the request")
        rv = meta.get("resourceVersion")
        if rv:
            if rv != cur["metadata"]["resourceVersion"]:
                raise conflict(kd, name)
        elif require_rv if require_rv is not None else kd.crd:
            raise invalid(kd, name, "metadata.resourceVersion", 0, "must be specified for an update")
        if sub == "status":
            new = copy.deepcopy(cur)
            if "status" in body:
                new["status"] = copy.deepcopy(body["status"])
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(body)
            new.pop("apiVersion", None)
            new.pop("kind", None)
            nmeta = new.get("metadata")
            if not isinstance(nmeta, dict):
                nmeta = new["metadata"] = {}
            cmeta = cur["metadata"]
            nmeta["name"] = name
            if kd.namespaced:
                nmeta["namespace"] = ns
            for f in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if f in cmeta:
                    nmeta[f] = cmeta[f]
                else:
                    nmeta.pop(f, None)
            nmeta.pop("managedFields", None)
            if kd.status:
                if "status" in cur:
                    new["status"] = copy.deepcopy(cur["status"])
                else:
                    new.pop("status", None)
            if kd.plural == "namespaces":
                nmeta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            if kd.plural == "services":
                spec = new.setdefault("spec", {})
                ospec = cur.get("spec") or {}
                for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                          "internalTrafficPolicy"):
                    if f not in spec and f in ospec:
                        spec[f] = copy.deepcopy(ospec[f])
            self.validate_meta(kd, name, new)
        apply_defaults(kd, new)
        new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        if kd.generation and spec_part(kd, new) != spec_part(kd, cur):
            new["metadata"]["generation"] = cur["metadata"].get("generation", 0) + 1
        if new == cur or dry_run:
            return new
        new["metadata"]["resourceVersion"] = str(self._bump())
        self.objects[kd.key][obj_key(ns, name)] = new
        self._record(kd, "MODIFIED", new, cur)
        return new

    def _finalize_ns(self, name, uid):
        with self.cond:
            cur = self.get(NS_KIND, "", name)
            if cur is not None and cur["metadata"]["uid"] == uid:
                self.delete(NS_KIND, "", name, finalize=True)

    def delete(self, kd, ns, name, opts=None, dry_run=False, finalize=False):
        cur = self.get(kd, ns, name)
        if cur is None:
            raise not_found(kd, name)
        pre = (opts or {}).get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kd.gr} "{name}": '
                           f'Precondition failed: UID in precondition: {pre["uid"]}, UID in '
                           f'object meta: {cur["metadata"]["uid"]}', details(kd, name))
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            raise conflict(kd, name)
        if dry_run:
            return cur
        if kd.plural == "namespaces" and not finalize:
            if cur["metadata"].get("deletionTimestamp"):
                return cur
            new = copy.deepcopy(cur)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            new["metadata"]["resourceVersion"] = str(self._bump())
            self.objects[kd.key][obj_key(ns, name)] = new
            self._record(kd, "MODIFIED", new, cur)
            uid = cur["metadata"]["uid"]
            t = threading.Timer(self.ns_finalize_delay, self._finalize_ns, (name, uid))
            t.daemon = True
            t.start()
            return new
        if kd.plural == "namespaces":
            for okd in KINDS:
                if not okd.namespaced:
                    continue
                for k in sorted(self.objects[okd.key]):
                    if k.startswith(name + "/"):
                        o = self.objects[okd.key][k]
                        self.delete(okd, name, o["metadata"]["name"])
        del self.objects[kd.key][obj_key(ns, name)]
        gone = copy.deepcopy(cur)
        gone["metadata"]["resourceVersion"] = str(self._bump())
        self._record(kd, "DELETED", gone, cur)
        return gone


# --------------------------------------------------------------------------------------------
# Faults and shared server state


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.clear()

    def clear(self):
        self.stall_until = 0.0
        self.stall_scope = "all"
        self.errors = []
        self.token_override = None
        self.drop_epoch = getattr(self, "drop_epoch", 0)
        self.drop_clean = False
        self.drop_partial = False
        self.malformed_epoch = getattr(self, "malformed_epoch", 0)
        self.malformed_line = b""
        self.werr_epoch = getattr(self, "werr_epoch", 0)
        self.werr_status = None
        self.rbac = None

    def stalled(self, scope):
        return time.time() < self.stall_until and self.stall_scope in ("all", scope)

    def take_error(self, method, path, is_watch):
        with self.lock:
            for e in self.errors:
                if e["count"] <= 0:
                    continue
                if e.get("prefix") and not path.startswith(e["prefix"]):
                    continue
                if e.get("method") and e["method"].upper() != method:
                    continue
                if e.get("watch") is not None and bool(e["watch"]) != is_watch:
                    continue
                e["count"] -= 1
                return e
        return None


class State:
    def __init__(self, args):
        self.args = args
        self.store = Store()
        self.faults = Faults()
        self.bookmark_interval = args.bookmark_interval
        self.log_lock = threading.Lock()
        self.requests = []
        self.seq = 0
        self.open_watches = 0
        self.port = 0
        self.response_encoding = args.response_encoding
        self.watch_chunk_size = 0
        self.watch_expired = "event"
        self.disabled_groups = set()
        self.extra_tokens = {}  # user name -> token, accepted besides the token file's
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        self.token_cache = (None, 0.0, "")

    def expected_token(self):
        if self.faults.token_override is not None:
            return self.faults.token_override
        try:
            with open(self.args.token_file, "r") as f:
                return f.read().strip()
        except OSError:
            return None

    def log(self, msg):
        if self.logf:
            self.logf.write(f"{time.strftime('%H:%M:%S')} {msg}\n")


# --------------------------------------------------------------------------------------------
# HTTP API handler


def parse_api_path(path):
    """-> dict(group, version, kind, ns, name, sub) or a discovery tuple, or None."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    if parts[0] == "api":
        if len(parts) < 2:
            return ("discovery", "api")
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) == 1:
            return ("discovery", "apis")
        if len(parts) == 2:
            return ("discovery", "group", parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return ("discovery", "gv", group, version)
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_GVR:
        ns, rest = rest[1], rest[2:]
    plural = rest[0]
    kd = BY_GVR.get((group, version, plural))
    if kd is None or len(rest) > 3:
        return ("unknown", group, version, plural)
    if kd.namespaced and ns is None and len(rest) > 1:
        return ("unknown", group, version, plural)
    if not kd.namespaced and ns is not None:
        return ("unknown", group, version, plural)
    return {"group": group, "version": version, "kind": kd, "ns": ns,
            "name": rest[1] if len(rest) > 1 else None, "sub": rest[2] if len(rest) > 2 else None}


class ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-apiserver"
    sys_version = ""
    timeout = 300
    disable_nagle_algorithm = True  # head and body are separate writes: avoid a 40 ms stall

    def log_message(self, fmt, *args):
        pass

    @property
    def st(self):
        return self.server.state

    # --- responses

    def send_json(self, code, obj, headers=None):
        body = dump(obj)
        enc = self.st.response_encoding
        gz = len(body) > GZIP_THRESHOLD and "gzip" in self.headers.get("Accept-Encoding", "")
        if gz:
            body = gzip.compress(body, 6)
        chunked = gz or enc == "chunked" or (enc == "auto" and len(body) > GO_CHUNKING_THRESHOLD)
        # Record the code before any byte leaves: a client that reads the request log right
        # after the response must find it complete.
        self.entry["code"] = code
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        if gz:
            self.send_header("Content-Encoding", "gzip")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            if chunked:
                for i in range(0, len(body), GO_CHUNK):
                    part = body[i:i + GO_CHUNK]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(body)

    def send_error_status(self, err):
        self.send_json(err.code, err.status(), err.headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ApiError(413, "RequestEntityTooLarge", "Request entity too large")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            for _ in range(100000):
                line = self.rfile.readline(100)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline(100)
                    break
                data += self.rfile.read(size)
                self.rfile.readline(10)
                if len(data) > MAX_BODY:
                    raise ApiError(413, "RequestEntityTooLarge", "Request entity too large")
            return data
        return self.rfile.read(n) if n else b""

    def json_body(self, raw):
        if not raw:
            raise bad_request("the body of the request was empty")
        try:
            return json.loads(raw)
        except ValueError as e:
            raise bad_request(f"the body of the request was in an unknown format: {e}")

    # --- dispatch

    def do_GET(self):
        self.handle_api()

    def do_HEAD(self):
        self.handle_api()

    def do_POST(self):
        self.handle_api()

    def do_PUT(self):
        self.handle_api()

    def do_PATCH(self):
        self.handle_api()

    def do_DELETE(self):
        self.handle_api()

    def handle_api(self):
        st = self.st
        url = urllib.parse.urlsplit(self.path)
        self.q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        path = url.path
        with st.log_lock:
            st.seq += 1
            self.entry = {"seq": st.seq, "time": time.time(), "method": self.command, "path": path,
                          "query": self.q, "user_agent": self.headers.get("User-Agent", ""),
                          "content_type": self.headers.get("Content-Type", ""),
                          "code": None, "watch": False, "verb": None,
                          "client": "%s:%d" % self.client_address[:2]}
            st.requests.append(self.entry)
        raw = b""
        try:
            if self.command in ("POST", "PUT", "PATCH", "DELETE"):
                raw = self.read_body()
            self.route(path, raw)
        except ApiError as e:
            self.send_error_status(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError) as e:
            self.close_connection = True
            st.log(f"connection error on {self.command} {self.path}: {e}")
        finally:
            st.log(f"{self.command} {self.path} -> {self.entry.get('code')} "
                   f"ua={self.entry['user_agent']!r}")

    def wait_stall(self, scope):
        f = self.st.faults
        for _ in range(100000):
            if not f.stalled(scope):
                return
            time.sleep(0.05)

    def route(self, path, raw):
        st = self.st
        self.wait_stall("request")
        auth = self.headers.get("Authorization", "")
        want = st.expected_token()
        # Like the apiserver's bearer authenticator: scheme case-insensitive, token trimmed.
        parts = auth.split(" ", 1)
        given = parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else ""
        user = None
        if given and want and given == want:
            user = "default"
        elif given:
            for name, tok in st.extra_tokens.items():
                if tok and given == tok:
                    user = name
                    break
        self.entry["user"] = user
        if user is None:
            self.entry["authorized"] = False
            raise ApiError(401, "Unauthorized", "Unauthorized")
        self.entry["authorized"] = True
        parsed = parse_api_path(path)
        is_watch = isinstance(parsed, dict) and self.command == "GET" and \
            self.q.get("watch") in ("1", "true", "True")
        if isinstance(parsed, dict):
            self.classify(parsed, is_watch)
        err = st.faults.take_error(self.command, path, is_watch)
        if err:
            code = int(err.get("code", 500))
            reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                      504: "Timeout"}.get(code, "InternalError")
            msg = {429: "Too many requests, please try again later.",
                   500: "Internal error occurred: injected fault",
                   503: "the server is currently unable to handle the request"}.get(
                code, "injected fault")
            hdr, det = {}, None
            if code in (429, 503) or err.get("retry_after") is not None:
                ra = int(err.get("retry_after", 1))
                hdr["Retry-After"] = ra
                det = {"retryAfterSeconds": ra}
            if err.get("close"):
                hdr["Connection"] = "close"
                self.close_connection = True
            raise ApiError(code, reason, msg, det, hdr)
        if path == "/version":
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake",
                                        "gitCommit": "0" * 40, "gitTreeState": "clean",
                                        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
                                        "compiler": "gc", "platform": "linux/amd64"})
        if path in ("/healthz", "/readyz", "/livez"):
            body = b"ok"
            self.entry["code"] = 200
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(body)
            return
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            return self.openapi_v3(path[len("/openapi/v3/"):])
        if parsed is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        if self.group_disabled(parsed):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if isinstance(parsed, tuple):
            if parsed[0] == "discovery":
                return self.discovery(parsed)
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        self.rbac_check(parsed)
        self.resource(parsed, raw, is_watch)

    def group_disabled(self, parsed):
        dis = self.st.disabled_groups
        if not dis:
            return False
        if isinstance(parsed, dict):
            return parsed["kind"].group in dis
        if parsed[0] == "discovery" and parsed[1] in ("group", "gv"):
            return parsed[2] in dis
        return False

    def classify(self, p, is_watch):
        kd = p["kind"]
        m = self.command
        if m in ("GET", "HEAD"):
            verb = "watch" if is_watch else ("get" if p["name"] else "list")
        elif m == "POST":
            verb = "create"
        elif m == "PUT":
            verb = "update"
        elif m == "PATCH":
            verb = "patch"
        elif m == "DELETE":
            verb = "delete" if p["name"] else "deletecollection"
        else:
            verb = m.lower()
        self.entry.update({"verb": verb, "group": kd.group, "version": p["version"],
                           "resource": kd.plural, "subresource": p["sub"] or "",
                           "namespace": p["ns"] or "", "name": p["name"] or "",
                           "watch": is_watch})

    @staticmethod
    def rule_allows(r, e, res):
        def has(field, v):
            vals = r.get(field) or []
            return v in vals or "*" in vals
        return (has("apiGroups", e["group"]) and has("resources", res) and has("verbs", e["verb"])
                and (not r.get("resourceNames") or e["name"] in r["resourceNames"]))

    def sa_rules(self, sa_ns, sa_name, ns):
        """Rules granted to ServiceAccount sa_ns/sa_name for a request in namespace ns (None =
        cluster scope), from the stored ClusterRoleBindings and RoleBindings, as RBAC does."""
        store = self.st.store
        rb = "rbac.authorization.k8s.io"

        def bound(b):
            return any(sub.get("kind") == "ServiceAccount" and sub.get("name") == sa_name
                       and sub.get("namespace", b["metadata"].get("namespace")) == sa_ns
                       for sub in b.get("subjects") or [])

        def role_rules(ref, bns):
            kind = (ref or {}).get("kind")
            if kind == "ClusterRole":
                o = store.get(BY_KEY[(rb, "clusterroles")], None, ref.get("name", ""))
            elif kind == "Role" and bns:
                o = store.get(BY_KEY[(rb, "roles")], bns, ref.get("name", ""))
            else:
                o = None
            return (o or {}).get("rules") or []
        rules = []
        with store.cond:
            for b in store.objects[(rb, "clusterrolebindings")].values():
                if bound(b):
                    rules += role_rules(b.get("roleRef"), None)
            if ns:
                for b in store.objects[(rb, "rolebindings")].values():
                    if b["metadata"].get("namespace") == ns and bound(b):
                        rules += role_rules(b.get("roleRef"), ns)
        return rules

    def rbac_check(self, p):
        cfg = self.st.faults.rbac
        if cfg is None:
            return
        e = self.entry
        if e.get("user") not in cfg.get("users", ["default"]):
            return
        res = e["resource"] + ("/" + e["subresource"] if e["subresource"] else "")
        who = "system:serviceaccount:fake:fake"
        if cfg.get("serviceAccount"):
            sa_ns, _, sa_name = cfg["serviceAccount"].partition("/")
            who = f"system:serviceaccount:{sa_ns}:{sa_name}"
            rules = self.sa_rules(sa_ns, sa_name, p["ns"])
        else:
            rules = cfg.get("rules") or []
        if any(self.rule_allows(r, e, res) for r in rules):
            return
        kd = p["kind"]
        scope = f'in the namespace "{p["ns"]}"' if p["ns"] else "at the cluster scope"
        raise ApiError(403, "Forbidden",
                       f'{res}{"." + kd.group if kd.group else ""} '
                       f'{(chr(34) + e["name"] + chr(34) + " ") if e["name"] else ""}is forbidden: '
                       f'User "{who}" cannot {e["verb"]} resource "{res}" in API group '
                       f'"{kd.group}" {scope}', details(kd, e["name"]))

    # --- discovery

    def discovery(self, d):
        if d[1] == "api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": f"127.0.0.1:{self.st.port}"}]})
        if d[1] == "apis":
            groups = [self.group_doc(g) for g in GROUP_VERSIONS
                      if g and g not in self.st.disabled_groups]
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": groups})
        if d[1] == "group":
            if d[2] not in GROUP_VERSIONS or not d[2]:
                raise ApiError(404, "NotFound", "the server could not find the requested resource",
                               {})
            doc = self.group_doc(d[2])
            doc["kind"] = "APIGroup"
            doc["apiVersion"] = "v1"
            return self.send_json(200, doc)
        if d[1] == "gv":
            group, version = d[2], d[3]
            kinds = [k for k in KINDS if k.group == group and version in k.versions]
            if not kinds:
                raise ApiError(404, "NotFound", "the server could not find the requested resource",
                               {})
            res = []
            for k in kinds:
                r = {"name": k.plural, "singularName": k.kind.lower(), "namespaced": k.namespaced,
                     "kind": k.kind, "verbs": VERBS}
                if k.short:
                    r["shortNames"] = k.short
                if k.categories:
                    r["categories"] = k.categories
                res.append(r)
                if k.status:
                    res.append({"name": k.plural + "/status", "singularName": "",
                                "namespaced": k.namespaced, "kind": k.kind,
                                "verbs": ["get", "patch", "update"]})
            gv = k.api_version(version)
            return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                        "groupVersion": gv, "resources": res})

    def openapi_v3(self, gvpath):
        """A minimal OpenAPI v3: for every kind, its PATCH operation with the GVK extension and the
        fieldValidation query parameter, which is all kubectl's validation probe looks at."""
        gvs = {}
        for k in KINDS:
            for v in k.versions:
                gvs.setdefault(("api/" if not k.group else f"apis/{k.group}/") + v, []).append(
                    (k, v))
        if not gvpath:
            return self.send_json(200, {"paths": {
                p: {"serverRelativeURL": f"/openapi/v3/{p}?hash=fake{len(gvs[p])}"}
                for p in sorted(gvs)}})
        if gvpath not in gvs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        paths = {}
        for k, v in gvs[gvpath]:
            base = "/" + gvpath + ("/namespaces/{namespace}" if k.namespaced else "")
            gvk = {"group": k.group, "version": v, "kind": k.kind}
            params = [{"name": n, "in": "query", "schema": {"type": "string"}}
                      for n in ("dryRun", "fieldManager", "fieldValidation", "force")]
            paths[f"{base}/{k.plural}/{{name}}"] = {
                "patch": {"operationId": f"patch{k.kind}", "x-kubernetes-action": "patch",
                          "x-kubernetes-group-version-kind": gvk, "parameters": params,
                          "responses": {"200": {"description": "OK"}}}}
        return self.send_json(200, {"openapi": "3.0.0",
                                    "info": {"title": "Kubernetes", "version": "v1.32.0-fake"},
                                    "paths": paths, "components": {"schemas": {}}})

    @staticmethod
    def group_doc(g):
        vs = GROUP_VERSIONS[g]
        return {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}

    # --- resources

    def out(self, kd, version, obj):
        o = {"apiVersion": kd.api_version(version), "kind": kd.kind}
        o.update(obj)
        return o

    def dry_run(self):
        dr = self.q.get("dryRun")
        if dr and dr != "All":
            raise bad_request(f"dryRun: Unsupported value: \"{dr}\": supported values: \"All\"")
        return dr == "All"

    def resource(self, p, raw, is_watch):
        kd, version, ns, name, sub = p["kind"], p["version"], p["ns"], p["name"], p["sub"]
        store = self.st.store
        m = self.command
        if sub and sub != "status":
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if sub == "status" and not kd.status:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if name is None:
            if m in ("GET", "HEAD"):
                if is_watch:
                    return self.watch(kd, version, ns)
                return self.list(kd, version, ns)
            if m == "POST":
                self.check_media()
                body = self.json_body(raw)
                self.check_type(kd, version, body)
                with store.cond:
                    if kd.namespaced and ns is None:
                        raise ApiError(405, "MethodNotAllowed",
                                       "the server does not allow this method on the requested "
                                       "resource", {})
                    obj = store.create(kd, ns, body, self.dry_run())
                return self.send_json(201, self.out(kd, version, obj))
            if m == "DELETE":
                return self.delete_collection(kd, version, ns)
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", {})
        if m in ("GET", "HEAD"):
            with store.cond:
                obj = store.get(kd, ns, name)
                if obj is None:
                    raise not_found(kd, name)
                obj = copy.deepcopy(obj)
            return self.send_json(200, self.out(kd, version, obj))
        if m == "PUT":
            self.check_media()
            body = self.json_body(raw)
            self.check_type(kd, version, body)
            with store.cond:
                obj = store.update(kd, ns, name, body, sub, self.dry_run())
            return self.send_json(200, self.out(kd, version, obj))
        if m == "PATCH":
            return self.patch(kd, version, ns, name, sub, raw)
        if m == "DELETE":
            opts = self.json_body(raw) if raw.strip() else {}
            with store.cond:
                obj = store.delete(kd, ns, name, opts, self.dry_run())
            return self.send_json(200, self.out(kd, version, obj))
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", {})

    def check_media(self):
        ct = self.headers.get("Content-Type", "").split(";")[0].strip()
        if ct not in ("application/json", ""):
            raise ApiError(415, "UnsupportedMediaType",
                           'the body of the request was in an unknown format - accepted media '
                           'types include: application/json', {})

    def check_type(self, kd, version, body):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        av, k = body.get("apiVersion"), body.get("kind")
        if (av and av != kd.api_version(version)) or (k and k != kd.kind):
            raise bad_request(f"the API version in the data ({av}) does not match the expected "
                              f"API version ({kd.api_version(version)})")

    def patch(self, kd, version, ns, name, sub, raw):
        store = self.st.store
        ct = self.headers.get("Content-Type", "").split(";")[0].strip()
        types = ["application/json-patch+json", "application/merge-patch+json",
                 "application/apply-patch+yaml"]
        if not kd.crd:
            types.insert(2, "application/strategic-merge-patch+json")
        if ct not in types:
            raise ApiError(415, "UnsupportedMediaType",
                           f'the body of the request was in an unknown format - accepted media '
                           f'types include: {", ".join(types)}', {})
        body = self.json_body(raw)
        dry = self.dry_run()
        if ct == "application/apply-patch+yaml":
            fm = self.q.get("fieldManager", "")
            if not fm or len(fm) > 128:
                raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                               "fieldManager: Required value: is required for apply patch", {})
        elif self.q.get("force"):
            raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: force: "
                           "Forbidden: may not be specified for non-apply patch", {})
        with store.cond:
            cur = store.get(kd, ns, name)
            if cur is None:
                if ct == "application/apply-patch+yaml" and sub is None:
                    if not isinstance(body, dict):
                        raise bad_request("apply patch must be an object")
                    self.check_type(kd, version, {k: v for k, v in body.items()
                                                  if k in ("apiVersion", "kind")})
                    body.setdefault("metadata", {})["name"] = name
                    obj = store.create(kd, ns, body, dry)
                    return self.send_json(201, self.out(kd, version, obj))
                raise not_found(kd, name)
            doc = self.out(kd, version, copy.deepcopy(cur))
            if ct == "application/json-patch+json":
                new = json_patch(doc, body)
            elif ct == "application/merge-patch+json":
                new = merge_patch(doc, body)
            elif ct == "application/strategic-merge-patch+json":
                new = strategic_merge(doc, body)
            else:
                new = merge_patch(doc, body)
            if not isinstance(new, dict):
                raise bad_request("patch result is not an object")
            newmeta = new.get("metadata") if isinstance(new.get("metadata"), dict) else {}
            if newmeta.get("resourceVersion") != cur["metadata"]["resourceVersion"]:
                if newmeta.get("resourceVersion"):
                    raise conflict(kd, name)
                new.setdefault("metadata", {})["resourceVersion"] = \
                    cur["metadata"]["resourceVersion"]
            self.check_type(kd, version, new)
            obj = store.update(kd, ns, name, new, sub, dry, require_rv=False)
        return self.send_json(200, self.out(kd, version, obj))

    def selectors(self, kd):
        return (parse_label_selector(self.q.get("labelSelector", "")),
                parse_field_selector(self.q.get("fieldSelector", ""), kd))

    def list(self, kd, version, ns):
        st = self.st
        store = st.store
        lsel, fsel = self.selectors(kd)
        limit = self.q.get("limit", "")
        try:
            limit = int(limit) if limit else 0
        except ValueError:
            raise bad_request(f"limit: Invalid value: {limit!r}")
        cont = self.q.get("continue", "")
        rvp = self.q.get("resourceVersion", "")
        rvm = self.q.get("resourceVersionMatch", "")
        if cont and rvp:
            raise bad_request("specifying resource version is not allowed when using continue")
        if rvp == "0" and not cont:
            limit = 0  # served from the watch cache, which ignores limit
        if rvm and not rvp:
            raise bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
        with store.cond:
            start = ""
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
                    snap_rv, start = int(tok["rv"]), tok["start"]
                except (ValueError, KeyError, TypeError):
                    raise bad_request("continue key is not valid: incorrect encoded start "
                                      "resourceVersion (version meta.k8s.io/v1)")
                if snap_rv < store.compacted_rv or snap_rv <= store.continue_expired_rv:
                    fresh = self.token(store.rv, start)
                    raise ApiError(410, "Expired",
                                   "The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without the "
                                   "continue parameter, or use the continue token in this response "
                                   "to retrieve the remainder of the results. Continuing with the "
                                   "provided token results in an inconsistent list - objects that "
                                   "were created, modified, or deleted between the time the first "
                                   "chunk was returned and now may show up in the list.",
                                   metadata={"continue": fresh})
            elif rvp and rvp != "0" and (rvm == "Exact" or (limit and not rvm)):
                try:
                    snap_rv = int(rvp)
                except ValueError:
                    raise bad_request(f"resourceVersion: Invalid value: \"{rvp}\"")
                if snap_rv < store.compacted_rv:
                    raise ApiError(410, "Expired", f"too old resource version: {snap_rv} "
                                   f"({store.compacted_rv})")
                if snap_rv > store.rv:
                    raise ApiError(504, "Timeout", f"Too large resource version: {snap_rv}, "
                                   f"current: {store.rv}",
                                   {"causes": [{"reason": "ResourceVersionTooLarge",
                                                "message": "Too large resource version"}],
                                    "retryAfterSeconds": 1}, {"Retry-After": 1})
            else:
                if rvp and rvp != "0":
                    try:
                        want = int(rvp)
                    except ValueError:
                        raise bad_request(f"resourceVersion: Invalid value: \"{rvp}\"")
                    if want > store.rv:
                        store.cond.wait(3.0)
                        if want > store.rv:
                            raise ApiError(504, "Timeout", f"Too large resource version: {want}, "
                                           f"current: {store.rv}",
                                           {"causes": [{"reason": "ResourceVersionTooLarge",
                                                        "message": "Too large resource version"}],
                                            "retryAfterSeconds": 1}, {"Retry-After": 1})
                snap_rv = store.rv
            state = store.state_at(kd, snap_rv)
            keys = sorted(k for k in state if (ns is None or k.startswith(ns + "/")) and k > start)
            items = []
            more = None
            for i, k in enumerate(keys[:MAX_LIST]):
                o = state[k]
                if not (labels_match(lsel, o["metadata"].get("labels")) and fields_match(fsel, o)):
                    continue
                if limit and len(items) == limit:
                    more = i
                    break
                items.append(copy.deepcopy(o))
        meta = {"resourceVersion": str(snap_rv)}
        if more is not None:
            meta["continue"] = self.token(snap_rv, keys[more - 1] if more else start)
            if not lsel and not fsel:
                meta["remainingItemCount"] = len(keys) - more
        if kd.crd:
            items = [self.out(kd, version, o) for o in items]
        return self.send_json(200, {"kind": kd.kind + "List", "apiVersion": kd.api_version(version),
                                    "metadata": meta, "items": items})

    @staticmethod
    def token(rv, start):
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start},
                         separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def delete_collection(self, kd, version, ns):
        store = self.st.store
        lsel, fsel = self.selectors(kd)
        dry = self.dry_run()
        with store.cond:
            gone = []
            for k in sorted(store.objects[kd.key]):
                o = store.objects[kd.key][k]
                if ns is not None and o["metadata"].get("namespace") != ns:
                    continue
                if labels_match(lsel, o["metadata"].get("labels")) and fields_match(fsel, o):
                    gone.append(store.delete(kd, o["metadata"].get("namespace"),
                                             o["metadata"]["name"], None, dry))
            rv = store.rv
        items = [self.out(kd, version, o) for o in gone] if kd.crd else gone
        return self.send_json(200, {"kind": kd.kind + "List", "apiVersion": kd.api_version(version),
                                    "metadata": {"resourceVersion": str(rv)}, "items": items})

    # --- watch

    def peer_closed(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        old = self.connection.gettimeout()
        try:
            self.connection.settimeout(0.01)
            data = self.connection.recv(1)
            return data == b""
        except (ssl.SSLWantReadError, socket.timeout, BlockingIOError):
            return False
        except (OSError, ssl.SSLError):
            return True
        finally:
            try:
                self.connection.settimeout(old)
            except OSError:
                pass

    def write_chunk(self, data):
        n = self.st.watch_chunk_size
        if n > 0:
            for i in range(0, len(data), n):
                part = data[i:i + n]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            return
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, kd, version, ns):
        st = self.st
        store = st.store
        faults = st.faults
        lsel, fsel = self.selectors(kd)
        rvp = self.q.get("resourceVersion", "")
        bookmarks = self.q.get("allowWatchBookmarks") in ("true", "1", "True")
        initial_end = self.q.get("sendInitialEvents") == "true"
        if initial_end and self.q.get("resourceVersionMatch") != "NotOlderThan":
            raise ApiError(422, "Invalid", "ListOptions.meta.k8s.io \"\" is invalid: "
                           "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                           "resourceVersionMatch to NotOlderThan", {})
        try:
            timeout = float(self.q.get("timeoutSeconds") or 0)
        except ValueError:
            raise bad_request("timeoutSeconds: Invalid value")
        if timeout <= 0:
            timeout = 1800.0  # the real default is --min-request-timeout x [1,2)
        deadline = time.time() + timeout

        def selected(o):
            if o is None:
                return False
            m = o["metadata"]
            if ns is not None and m.get("namespace") != ns:
                return False
            return labels_match(lsel, m.get("labels")) and fields_match(fsel, o)

        too_old = None
        initial = []
        with store.cond:
            if rvp not in ("", "0") and not initial_end:
                try:
                    n = int(rvp)
                except ValueError:
                    raise bad_request(f"resourceVersion: Invalid value: \"{rvp}\"")
                if n < store.compacted_rv:
                    too_old = (n, store.compacted_rv)
                pos = bisect.bisect_right(store.history_rvs, n)
            else:
                objs = store.objects[kd.key]
                initial = [copy.deepcopy(objs[k]) for k in sorted(objs) if selected(objs[k])]
                pos = len(store.history)
            start_rv = store.rv
            if too_old and st.watch_expired == "http":
                raise ApiError(410, "Expired", f"too old resource version: {too_old[0]} "
                                               f"({too_old[1]})")
            drop_epoch = faults.drop_epoch
            mal_epoch = faults.malformed_epoch
            werr_epoch = faults.werr_epoch
        self.entry["code"] = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

        def event(etype, obj):
            return dump({"type": etype, "object": obj}) + b"\n"

        def bookmark(rv, annotate=False):
            meta = {"resourceVersion": str(rv)}
            if not kd.crd:
                meta["creationTimestamp"] = None  # a typed (built-in) object's zero value
            if annotate:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return event("BOOKMARK", {"kind": kd.kind, "apiVersion": kd.api_version(version),
                                      "metadata": meta})

        with store.cond:
            st.open_watches += 1
        try:
            if too_old:
                self.write_chunk(event("ERROR", {
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f"too old resource version: {too_old[0]} ({too_old[1]})",
                    "reason": "Expired", "code": 410}))
                self.end_stream()
                return
            buf = b"".join(event("ADDED", self.out(kd, version, o)) for o in initial)
            if initial_end and bookmarks:
                buf += bookmark(start_rv, True)
            if buf:
                self.write_chunk(buf)
            next_bm = time.time() + st.bookmark_interval
            last_check = time.time()
            partial = False
            for _ in range(10 ** 9):
                with store.cond:
                    now = time.time()
                    if (pos >= len(store.history) and drop_epoch == faults.drop_epoch
                            and mal_epoch == faults.malformed_epoch
                            and werr_epoch == faults.werr_epoch):
                        store.cond.wait(max(0.01, min(0.25, deadline - now,
                                                      (next_bm - now) if bookmarks else 0.25)))
                    if drop_epoch != faults.drop_epoch:
                        clean = faults.drop_clean
                        partial = faults.drop_partial
                        break
                    werr = mal = batch = None
                    if not faults.stalled("watch"):  # a stall holds events and faults alike
                        batch = store.history[pos:]
                        pos = len(store.history)
                        cur_rv = store.rv
                        if werr_epoch != faults.werr_epoch:
                            werr_epoch = faults.werr_epoch
                            werr = faults.werr_status
                        if mal_epoch != faults.malformed_epoch:
                            mal_epoch = faults.malformed_epoch
                            mal = faults.malformed_line
                now = time.time()
                if batch is None:
                    if now >= deadline:
                        clean = True
                        break
                    time.sleep(0.05)
                    continue
                out = []
                for ev in batch:
                    if ev.key != kd.key:
                        continue
                    was, now_in = selected(ev.prev), selected(ev.obj)
                    if ev.type == "ADDED" and now_in:
                        out.append(event("ADDED", self.out(kd, version, ev.obj)))
                    elif ev.type == "DELETED" and was:
                        out.append(event("DELETED", self.out(kd, version, ev.obj)))
                    elif ev.type == "MODIFIED":
                        if was and now_in:
                            out.append(event("MODIFIED", self.out(kd, version, ev.obj)))
                        elif now_in:
                            out.append(event("ADDED", self.out(kd, version, ev.obj)))
                        elif was:
                            # Leaving the selection: the previous state at the event's RV.
                            gone = copy.deepcopy(ev.prev)
                            gone["metadata"]["resourceVersion"] = str(ev.rv)
                            out.append(event("DELETED", self.out(kd, version, gone)))
                if mal is not None:
                    out.append(mal if mal.endswith(b"\n") else mal + b"\n")
                if werr is not None:
                    out.append(event("ERROR", werr))
                if bookmarks and now >= next_bm:
                    out.append(bookmark(cur_rv))
                    next_bm = now + st.bookmark_interval
                if out:
                    self.write_chunk(b"".join(out))
                if werr is not None:
                    clean = True
                    break
                if now >= deadline:
                    clean = True
                    break
                if now - last_check > 0.5:
                    last_check = now
                    if self.peer_closed():
                        clean = None
                        break
            if clean:
                self.end_stream()
            else:
                if partial:
                    try:
                        self.write_chunk(b'{"type":"MODIFIED","object":{"kind":"' +
                                         kd.kind.encode() + b'","metadata":{"na')
                    except OSError:
                        pass
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        finally:
            with store.cond:
                st.open_watches -= 1

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def finish_request(self, request, client_address):
        try:
            request.settimeout(10)
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
            conn.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            self.state.log(f"TLS handshake from {client_address} failed: {e}")
            try:
                request.close()
            except OSError:
                pass
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        self.state.log(f"handler error from {client_address}: {sys.exc_info()[1]!r}")


# --------------------------------------------------------------------------------------------
# Admin (fault injection and inspection)


class AdminHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-apiserver-admin"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        body = dump(obj)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(n, MAX_BODY)) if n else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return self.reply(400, {"error": "bad json"})
        try:
            res = self.action(st, self.command, url.path, q, body)
        except (KeyError, ValueError, TypeError) as e:
            return self.reply(400, {"error": repr(e)})
        if res is None:
            return self.reply(404, {"error": "no such admin endpoint"})
        st.log(f"admin {self.command} {url.path} {raw[:200]!r}")
        self.reply(200, res)

    def action(self, st, m, path, q, body):
        store, f = st.store, st.faults
        if path == "/healthz":
            return "ok"
        if path == "/state" and m == "GET":
            with store.cond:
                return {"rv": str(store.rv), "compacted_rv": str(store.compacted_rv),
                        "open_watches": st.open_watches, "port": st.port,
                        "history": len(store.history),
                        "bookmark_interval": st.bookmark_interval}
        if path == "/requests":
            with st.log_lock:
                if m == "DELETE":
                    st.requests = []
                    return {"cleared": True}
                since = int(q.get("since", 0))
                items = [dict(e) for e in st.requests if e["seq"] > since]
                return {"items": items, "next": st.seq}
        if path == "/objects" and m == "GET":
            res = q.get("resource")
            with store.cond:
                out = []
                for kd in KINDS:
                    if res and kd.plural != res:
                        continue
                    for k in sorted(store.objects[kd.key]):
                        o = {"apiVersion": kd.api_version(kd.versions[0]), "kind": kd.kind}
                        o.update(copy.deepcopy(store.objects[kd.key][k]))
                        out.append(o)
                return {"items": out, "resourceVersion": str(store.rv)}
        if m != "POST":
            return None
        with store.cond:
            if path == "/fault/drop-watches":
                f.drop_clean = bool(body.get("clean"))
                f.drop_partial = bool(body.get("partial"))
                f.drop_epoch += 1
            elif path == "/fault/stall":
                f.stall_scope = body.get("scope", "all")
                f.stall_until = time.time() + float(body.get("seconds", 5))
            elif path == "/fault/errors":
                e = {"code": int(body.get("code", 500)), "count": int(body.get("count", 1)),
                     "prefix": body.get("prefix"), "method": body.get("method"),
                     "watch": body.get("watch"), "close": bool(body.get("close"))}
                if body.get("retry_after") is not None:
                    e["retry_after"] = int(body["retry_after"])
                with f.lock:
                    f.errors.append(e)
            elif path == "/fault/malformed":
                f.malformed_line = body.get("line", '{"type":"MODIFIED","object":{"kind":').encode()
                f.malformed_epoch += 1
            elif path == "/fault/watch-error":
                code = int(body.get("code", 410))
                f.werr_status = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                 "status": "Failure",
                                 "message": body.get("message",
                                                     f"too old resource version: {store.rv} "
                                                     f"({store.rv})" if code == 410 else
                                                     "injected watch error"),
                                 "reason": body.get("reason",
                                                    "Expired" if code == 410 else "InternalError"),
                                 "code": code}
                f.werr_epoch += 1
            elif path == "/fault/token":
                if body.get("reset"):
                    f.token_override = None
                elif body.get("expire"):
                    f.token_override = "expired-" + secrets.token_hex(16)
                else:
                    f.token_override = str(body["token"])
            elif path == "/fault/compact":
                store.compacted_rv = int(body.get("rv", store.rv))
            elif path == "/fault/expire-continue":
                store.continue_expired_rv = store.rv
            elif path == "/fault/clear":
                f.clear()
            elif path == "/config":
                if "bookmark_interval" in body:
                    st.bookmark_interval = float(body["bookmark_interval"])
                if "response_encoding" in body:
                    if body["response_encoding"] not in ("auto", "length", "chunked"):
                        raise ValueError("response_encoding")
                    st.response_encoding = body["response_encoding"]
                if "watch_chunk_size" in body:
                    st.watch_chunk_size = max(0, int(body["watch_chunk_size"]))
                if "watch_expired" in body:
                    if body["watch_expired"] not in ("event", "http"):
                        raise ValueError("watch_expired")
                    st.watch_expired = body["watch_expired"]
                if "disabled_groups" in body:
                    st.disabled_groups = set(body["disabled_groups"] or [])
            elif path == "/rbac":
                if body.get("serviceAccount") or body.get("rules") is not None:
                    f.rbac = {"rules": body.get("rules"),
                              "serviceAccount": body.get("serviceAccount"),
                              "users": body.get("users") or ["default"]}
                else:
                    f.rbac = None
            elif path == "/tokens":
                st.extra_tokens = {str(k): str(v) for k, v in (body.get("tokens") or {}).items()}
            else:
                return None
            store.cond.notify_all()
            return {"ok": True, "rv": str(store.rv)}


class AdminServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# --------------------------------------------------------------------------------------------
# Certificates, kubeconfig, main


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{r.stdout.decode(errors='replace')}")


def make_certs(d, key_type, sans, regen):
    ca_crt, ca_key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
    crt, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    if not regen and all(os.path.exists(p) for p in (ca_crt, ca_key, crt, key)):
        return ca_crt, crt, key
    if key_type == "rsa":
        newkey = ["-newkey", "rsa:2048"]
    else:
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", ca_key, "-out", ca_crt,
         "-days", "3650", "-subj", "/CN=fake-kubernetes-ca", "-addext",
         "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    csr = os.path.join(d, "server.csr")
    run(["openssl", "req", *newkey, "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=kube-apiserver"])
    alt = ["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
           "DNS:kubernetes.default.svc"]
    for s in sans:
        alt.append(("IP:" if re.match(r"^[0-9.]+$|:", s) else "DNS:") + s)
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as fh:
        fh.write("basicConstraints=critical,CA:FALSE\n"
                 "keyUsage=critical,digitalSignature,keyEncipherment\n"
                 "extendedKeyUsage=serverAuth\n"
                 f"subjectAltName={','.join(alt)}\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "365", "-out", crt, "-extfile", ext])
    os.unlink(csr)
    return ca_crt, crt, key


def write_kubeconfig(path, server, ca_crt, token, token_file, inline_ca=True,
                     namespace="default"):
    """Write a kubeconfig (YAML, block style) with one cluster/user/context named "fake".
    token_file set: `tokenFile:` instead of `token:`; inline_ca False: `certificate-authority:`
    (a path) instead of `certificate-authority-data:`."""
    if inline_ca:
        with open(ca_crt, "rb") as fh:
            ca = "    certificate-authority-data: " + base64.b64encode(fh.read()).decode() + "\n"
    else:
        ca = f"    certificate-authority: {ca_crt}\n"
    user = f"    tokenFile: {token_file}\n" if token_file else f"    token: {token}\n"
    ns = f"    namespace: {namespace}\n" if namespace else ""
    text = ("apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            "- name: fake\n"
            "  cluster:\n"
            f"    server: {server}\n"
            f"{ca}"
            "users:\n"
            "- name: fake\n"
            "  user:\n"
            f"{user}"
            "contexts:\n"
            "- name: fake\n"
            "  context:\n"
            "    cluster: fake\n"
            "    user: fake\n"
            f"{ns}"
            "current-context: fake\n"
            "preferences: {}\n")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake Kubernetes API server for tests")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--admin-listen", default="127.0.0.1:0")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--token-file")
    ap.add_argument("--kubeconfig-out")
    ap.add_argument("--kubeconfig-token-file", action="store_true",
                    help="write tokenFile: instead of the token itself into the kubeconfig")
    ap.add_argument("--log")
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    ap.add_argument("--response-encoding", choices=["auto", "length", "chunked"], default="auto",
                    help="non-watch bodies: auto = chunked above 2048 bytes like Go's net/http")
    ap.add_argument("--key-type", choices=["ec", "rsa"], default="ec")
    ap.add_argument("--san", action="append", default=[])
    ap.add_argument("--regen-certs", action="store_true")
    ap.add_argument("--no-default-namespaces", action="store_true")
    ap.add_argument("--namespace-finalize-delay", type=float, default=3.0)
    ap.add_argument("--persist", action="store_true",
                    help="load DIR/store.json at start if present, save it on SIGTERM/SIGINT "
                         "(an apiserver restart keeps its etcd)")
    ap.add_argument("--without-kind", action="append", default=[], metavar="PLURAL",
                    help="leave this resource out (as if its CRD were not installed); repeatable")
    args = ap.parse_args(argv)
    drop_kinds(set(args.without_kind))

    d = os.path.abspath(args.state_dir)
    os.makedirs(d, exist_ok=True)
    if not args.token_file:
        args.token_file = os.path.join(d, "token")
        if not os.path.exists(args.token_file):
            with open(args.token_file, "w") as fh:
                fh.write(secrets.token_hex(24) + "\n")
    args.token_file = os.path.abspath(args.token_file)
    ca_crt, crt, key = make_certs(d, args.key_type, args.san, args.regen_certs)

    state = State(args)
    state.store.ns_finalize_delay = args.namespace_finalize_delay
    store_path = os.path.join(d, "store.json")
    if args.persist and os.path.exists(store_path):
        state.store.load(store_path)
    elif not args.no_default_namespaces:
        with state.store.cond:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                state.store.create(NS_KIND, None, {"metadata": {"name": ns}})

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])

    host, port = split_hostport(args.listen)
    api = TLSServer((host, port), ApiHandler)
    api.ssl_ctx = ctx
    api.state = state
    state.port = api.server_address[1]
    ahost, aport = split_hostport(args.admin_listen)
    admin = AdminServer((ahost, aport), AdminHandler)
    admin.state = state

    server_url = f"https://{host}:{state.port}"
    admin_url = f"http://{ahost}:{admin.server_address[1]}"
    kubeconfig = os.path.abspath(args.kubeconfig_out) if args.kubeconfig_out else \
        os.path.join(d, "kubeconfig")
    write_kubeconfig(kubeconfig, server_url, ca_crt, state.expected_token(),
                     args.token_file if args.kubeconfig_token_file else None)

    for srv in (api, admin):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
    info = {"port": state.port, "admin_port": admin.server_address[1], "server": server_url,
            "admin": admin_url, "ca": ca_crt, "kubeconfig": kubeconfig,
            "token_file": args.token_file, "pid": os.getpid()}
    with open(os.path.join(d, "port"), "w") as fh:
        fh.write(f"{state.port}\n")
    tmp = os.path.join(d, "ready.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(info, fh)
    os.replace(tmp, os.path.join(d, "ready.json"))
    print(f"ready {server_url} admin {admin_url}", flush=True)
    state.log(f"listening on {server_url}, admin {admin_url}")

    stop = threading.Event()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    api.shutdown()
    admin.shutdown()
    if args.persist:
        state.store.save(store_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
