#!/usr/bin/env bash
# Build the HTTP libFuzzer target with clang into build/fuzz/ (not part of `make test`).
set -euo pipefail
cd "$(dirname "$0")/../.."
LLHTTP_DIR=${LLHTTP_DIR:-/usr/share/llhttp}
LLHTTP_INC=${LLHTTP_INC:-/usr/share/include/llhttp}
mkdir -p build/fuzz
clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
    -I"$LLHTTP_INC" tests/fuzz/fuzz_http_head.c src/http/*.c src/base/str.c src/base/assert.c \
    src/base/log.c "$LLHTTP_DIR"/llhttp.c "$LLHTTP_DIR"/api.c "$LLHTTP_DIR"/http.c \
    -o build/fuzz/fuzz_http_head
echo "built build/fuzz/fuzz_http_head"
