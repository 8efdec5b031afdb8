#!/usr/bin/env bash
# Control-plane benchmark (not a test): builds perf/control_bench.c against build/libserval.a and
# prints a markdown table (translate+build time, generation memory per route, lookups/s at 10,
# 1,000 and 10,000 HTTPRoutes with 100,000 endpoints in the store; file write -> published
# latency). Output also goes to build/bench/control.md. Run after `make` (make bench does).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
LIBS=$(sed -n 's/^LIBS := //p' Makefile)
# shellcheck disable=SC2086
cc -std=gnu11 -D_GNU_SOURCE -O2 -g -Iinclude -Isrc perf/control_bench.c build/libserval.a \
    -o build/bench/control-bench $LIBS
taskset -c "${BENCH_CPU:-0}" build/bench/control-bench "$@" | tee build/bench/control.md
