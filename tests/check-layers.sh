#!/usr/bin/env bash
# Enforces the module dependency rules of DESIGN.md with a grep over #include lines.
set -uo pipefail
cd "$(dirname "$0")/.."
bad=0
rule() { # folder, forbidden include pattern, why
    local hits
    hits=$(grep -rnE "#include [<\"]serval/($2)/" "$1" 2>/dev/null || true)
    if [ -n "$hits" ]; then
        echo "layer violation ($3):"
        echo "$hits"
        bad=1
    fi
}
rule src/base 'http|routing|dataplane|tls|control|admin' "base includes libc only"
rule src/http 'routing|dataplane|tls|control|admin' "http includes base only"
rule src/tls 'http|routing|dataplane|control|admin' "tls includes base only"
rule src/routing 'dataplane|tls|control|admin' "routing includes base and http types only"
rule src/dataplane 'control|admin' "dataplane never includes control"
rule src/control 'dataplane|admin' "control never includes dataplane"
rule src/control/model 'routing|http|tls' "model includes base only"
if grep -rn "liburing.h" src --include='*.c' --include='*.h' | grep -v '^src/dataplane/uring' >/dev/null; then
    echo "layer violation: liburing used outside src/dataplane/uring*"
    grep -rn "liburing.h" src | grep -v '^src/dataplane/uring'
    bad=1
fi
[ $bad = 0 ] && echo "layers ok"
exit $bad
