#!/usr/bin/env bash
# Builds wolfSSL from Debian's source package (the installed libwolfssl version, with Debian's
# patches) with AES-NI and the Intel assembly enabled, as a static library in $1 (default
# build/wolfssl): $1/lib/libwolfssl.a and $1/include/wolfssl/*.h (options.h included).
# Used by `make WOLFSSL=aesni`; see the TLS section of README.md for why and the numbers.
# Needs deb-src lines for the Debian archive (apt-get source) and autoconf/automake/libtool
# (installed when run as root). Nothing is copied into the tree: sources live under build/.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/wolfssl}"
ver=$(dpkg-query -W -f '${Version}' libwolfssl-dev 2>/dev/null || true)
[ -n "$ver" ] || { echo "wolfssl.sh: libwolfssl-dev is not installed" >&2; exit 1; }
stamp="$out/.built-$ver"
[ -f "$stamp" ] && [ -f "$out/lib/libwolfssl.a" ] && [ -f "$out/include/wolfssl/options.h" ] && exit 0

FLAGS=(--enable-distro --enable-aesni --enable-intelasm --enable-sp --enable-sp-asm
       --enable-static --disable-shared --disable-examples --disable-crypttests)

need=()
for t in autoreconf automake libtoolize dpkg-source; do
    command -v "$t" >/dev/null 2>&1 || need+=("$t")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            autoconf automake libtool dpkg-dev >&2
    else
        echo "wolfssl.sh: missing ${need[*]}; run: sudo apt-get install -y autoconf automake libtool dpkg-dev" >&2
        exit 1
    fi
fi

src="$out/src"
mkdir -p "$src"
if ! ls "$src"/wolfssl_*.dsc >/dev/null 2>&1; then
    (cd "$src" && apt-get source --download-only "wolfssl=$ver" >&2) || {
        echo "wolfssl.sh: apt-get source failed; add deb-src lines for deb.debian.org (Types: deb deb-src)" >&2
        exit 1
    }
fi
tree="$src/tree"
if [ ! -f "$tree/configure" ]; then
    rm -rf "$tree"
    dpkg-source -x "$(ls "$src"/wolfssl_*.dsc | head -1)" "$tree" >&2
    (cd "$tree" && ./autogen.sh >&2)
fi
abs_out=$(cd "$out" && pwd)
(cd "$tree" && ./configure --prefix="$abs_out" "${FLAGS[@]}" CFLAGS="-O2 -g" >&2 &&
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j2 >&2 && make install >&2)
# Debian's packaging leaves options.h out of the installed headers; the build needs it.
cp "$tree/wolfssl/options.h" "$out/include/wolfssl/options.h"
touch "$stamp"
