#!/usr/bin/env bash
# TLS micro-benchmark (not a test): perf/bench_tls.c compiled against
#   (1) Debian's libwolfssl (no AES-NI), and
#   (2) wolfSSL rebuilt from Debian's source package with AES-NI/Intel asm, if build/wolfssl
#       (third_party/wolfssl.sh, built by `make`) or build/wolfssl-aesni exists,
# each pinned to CPU 0. Prints one table per build. BENCH_TLS_SECONDS (default 3) per scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/bench-tls
mkdir -p "$out"
tests/tls/gen-certs.sh "$out/certs" >/dev/null
secs="${BENCH_TLS_SECONDS:-3}"
srcs="perf/bench_tls.c src/tls/server.c src/tls/conn.c src/tls/ticket.c src/tls/client.c src/base/assert.c src/base/log.c src/base/str.c"
flags="-std=gnu11 -D_GNU_SOURCE -O2 -g -Iinclude -Isrc -pthread"
# shellcheck disable=SC2086
cc $flags -o "$out/bench_tls_system" $srcs -lwolfssl -lm
echo "### wolfSSL $(dpkg-query -W -f '${Version}' libwolfssl35 2>/dev/null || echo system): Debian package"
taskset -c 0 "$out/bench_tls_system" "$out/certs" "$secs"
src_dir=$(ls -d build/wolfssl-src/wolfssl-*/ 2>/dev/null | head -1)
inc="" lib=""
# the library `make` linked (third_party/wolfssl.sh, default make): its path is in the flavour file
read -r flavour made_lib < build/obj/.wolfssl-flavour 2>/dev/null || flavour=""
if [ "$flavour" = aesni ] && [ -f "$made_lib" ]; then
    inc=$(dirname "$(dirname "$made_lib")")/include lib=$made_lib
elif [ -f build/wolfssl-aesni/lib/libwolfssl.a ] && [ -n "$src_dir" ]; then
    # a manual build: headers from its configured source tree (Debian does not install options.h)
    inc="$src_dir" lib=build/wolfssl-aesni/lib/libwolfssl.a
fi
if [ -n "$lib" ]; then
    # shellcheck disable=SC2086
    cc $flags -I"$inc" -o "$out/bench_tls_aesni" $srcs "$lib" -lm
    echo "### wolfSSL rebuilt from the Debian source package ($lib)"
    taskset -c 0 "$out/bench_tls_aesni" "$out/certs" "$secs"
else
    echo "(no rebuilt wolfSSL: run make first; only the system library measured)"
fi
