#!/usr/bin/env bash
# Manual ThreadSanitizer run of the routing publication tests (make test only runs ASan).
#   tests/unit/routing/run-tsan.sh      -> builds build/tsan/routing-gen and runs routing_generation*
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p build/tsan
cc -std=gnu11 -D_GNU_SOURCE -g -O1 -pthread -fsanitize=thread -Iinclude -Isrc \
   -Wall -Wextra -Werror src/routing/*.c src/base/*.c tests/unit/main.c \
   tests/unit/routing/test_generation.c -o build/tsan/routing-gen -lpcre2-8
TSAN_OPTIONS=halt_on_error=1 build/tsan/routing-gen routing_generation
