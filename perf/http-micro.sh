#!/usr/bin/env bash
# Build and run the HTTP module micro-benchmark (-O2, no sanitizers). Not part of `make test`.
#   perf/http-micro.sh [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
LLHTTP_DIR=${LLHTTP_DIR:-/usr/share/llhttp}
LLHTTP_INC=${LLHTTP_INC:-/usr/share/include/llhttp}
mkdir -p build/perf
${CC:-cc} -std=gnu11 -D_GNU_SOURCE -O2 -g -Iinclude -Isrc -I"$LLHTTP_INC" perf/http_micro.c \
    src/http/*.c src/base/str.c src/base/assert.c src/base/log.c \
    "$LLHTTP_DIR"/llhttp.c "$LLHTTP_DIR"/api.c "$LLHTTP_DIR"/http.c -o build/perf/http_micro
build/perf/http_micro "$@"
