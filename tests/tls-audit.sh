#!/usr/bin/env bash
# TLS audit (not part of `make test`: slow and depends on testssl.sh's rule set): starts the
# release serval-gateway in folder mode with one HTTPS bind on loopback (listener a.example.com
# with an ECDSA P-256 certificate, listener b.test with an RSA-2048 one, both signed by the test
# CA of tests/tls/gen-certs.sh), runs testssl.sh (Debian package testssl.sh) against each SNI and fails
# when any finding is rated HIGH or CRITICAL. Prints every finding rated LOW or above.
#
# usage: tests/tls-audit.sh            (after `make`; needs testssl, openssl, python3)
#   TLS_AUDIT_ARGS="..." extra testssl.sh options (default: all standard checks)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v testssl >/dev/null || { echo "tls-audit: testssl missing (apt-get install testssl.sh)" >&2; exit 2; }
[ -x build/serval-gateway ] && [ -x build/serval-echo ] || { echo "tls-audit: run make first" >&2; exit 2; }

work=$(mktemp -d /tmp/sv-tls-audit-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && cp "$work"/*.txt build/ 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

tests/tls/gen-certs.sh "$work/certs" >/dev/null
# Leaves like a public CA issues them (CRL distribution point and OCSP responder named; the test
# CA is passed to testssl.sh with --add-ca): testssl.sh then judges the server, not the shape of
# our throw-away test certificates (it reports a missing CRL/OCSP URI as HIGH).
audit_leaf() { # name ec|rsa san
    local n=$1 d=$work/certs
    if [ "$2" = rsa ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/$n.key" 2>/dev/null
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$n.key" 2>/dev/null
    fi
    openssl req -new -key "$d/$n.key" -subj "/CN=$3" -out "$d/$n.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:$3" "keyUsage=critical,digitalSignature${4:-}" \
        "extendedKeyUsage=serverAuth" "crlDistributionPoints=URI:http://127.0.0.1/serval-test.crl" \
        "authorityInfoAccess=OCSP;URI:http://127.0.0.1/ocsp" >"$d/$n.ext"
    openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 90 \
        -sha256 -extfile "$d/$n.ext" -out "$d/$n.leaf" 2>/dev/null
    cat "$d/$n.leaf" "$d/ca.crt" >"$d/$n.crt"
}
audit_leaf audit_ec ec a.example.com
audit_leaf audit_rsa rsa b.test ",keyEncipherment"
addr=127.77.0.$((RANDOM % 200 + 20))
port=$((20000 + RANDOM % 20000))
eport=$((port + 1))
admin=$((port + 2))
mkdir -p "$work/conf"
pem() { python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$1"; }
cat >"$work/conf/gateway.yaml" <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: serval}
spec: {controllerName: serval.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: demo}
spec:
  gatewayClassName: serval
  listeners:
  - {name: a, port: $port, protocol: HTTPS, hostname: a.example.com,
     tls: {certificateRefs: [{name: cert-a}]}}
  - {name: b, port: $port, protocol: HTTPS, hostname: b.test,
     tls: {certificateRefs: [{name: cert-b}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: demo}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: demo}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-1, namespace: demo, labels: {kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{name: http, port: $eport}]
endpoints: [{addresses: ["$addr"], conditions: {ready: true}}]
---
apiVersion: v1
kind: Secret
metadata: {name: cert-a, namespace: demo}
type: kubernetes.io/tls
stringData:
  tls.crt: $(pem "$work/certs/audit_ec.crt")
  tls.key: $(pem "$work/certs/audit_ec.key")
---
apiVersion: v1
kind: Secret
metadata: {name: cert-b, namespace: demo}
type: kubernetes.io/tls
stringData:
  tls.crt: $(pem "$work/certs/audit_rsa.crt")
  tls.key: $(pem "$work/certs/audit_rsa.key")
EOF

build/serval-echo --listen "$addr:$eport" >"$work/echo.log" 2>&1 &
pids+=($!)
build/serval-gateway --config-dir "$work/conf" --bind "$addr" --workers 1 \
    --admin "$addr:$admin" >"$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null && break
    sleep 0.1
done

fail=0
for name in a.example.com b.test; do
    json="$work/$name.json"
    echo "== testssl.sh against $name ($addr:$port)"
    # testssl.sh exits non-zero for many reasons (e.g. its own warnings); the JSON decides
    # shellcheck disable=SC2086
    testssl --quiet --color 0 --warnings off --ip "$addr" --add-ca "$work/certs/ca.crt" --jsonfile "$json" \
        ${TLS_AUDIT_ARGS:-} "https://$name:$port/" >"$work/$name.txt" 2>&1 || true
    if [ ! -s "$json" ]; then
        echo "tls-audit: testssl.sh produced no JSON for $name:"; tail -20 "$work/$name.txt"
        fail=1
        continue
    fi
    python3 - "$json" "$name" <<'EOF' || fail=1
import json, sys
findings = json.load(open(sys.argv[1]))
order = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
bad = 0
for f in findings:
    sev = f.get("severity", "")
    if sev in order:
        print(f"  {sev:8} {f.get('id')}: {f.get('finding')}")
        bad += sev in ("HIGH", "CRITICAL")
n = sum(1 for f in findings if f.get("severity") in ("OK", "INFO"))
print(f"  {sys.argv[2]}: {len(findings)} results, {n} OK/INFO, {bad} HIGH/CRITICAL")
sys.exit(1 if bad else 0)
EOF
done
if [ "$fail" != 0 ]; then
    echo "tls-audit: FAILED (HIGH/CRITICAL findings or testssl.sh errors)"
    exit 1
fi
echo "tls-audit: passed (no HIGH or CRITICAL finding)"
