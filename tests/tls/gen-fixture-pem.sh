#!/usr/bin/env bash
# Prints a TEST-ONLY self-signed certificate and its private key (PEM, cert first) for <CN>
# (<type>: ec or rsa). Used once to produce the certificate Secrets of
# tests/data/translate/listeners.yaml (translation validates certificates for real, so fixture
# Secrets must hold a parseable, matching pair). These keys protect nothing.
set -euo pipefail
cn="$1"; type="${2:-ec}"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
if [ "$type" = rsa ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/k" -out "$d/c" -subj "/CN=$cn" \
        -addext "subjectAltName=DNS:$cn" -days 36500 >/dev/null 2>&1
else
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/k" -out "$d/c" \
        -subj "/CN=$cn" -addext "subjectAltName=DNS:$cn" -days 36500 >/dev/null 2>&1
fi
cat "$d/c" "$d/k"
