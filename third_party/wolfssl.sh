#!/usr/bin/env bash
# Builds wolfSSL from Debian's source package (the installed libwolfssl version, with Debian's
# patches) with AES-NI and the Intel assembly enabled, as a static library in $1 (default
# build/wolfssl; the Makefile passes a per-machine cache): $1/lib/libwolfssl.a and $1/include/wolfssl/*.h (options.h included).
# Used by `make` (WOLFSSL=aesni is the default; WOLFSSL=system links Debian's libwolfssl instead);
# see the TLS section of README.md for why and the numbers. Needs deb-src lines for the Debian
# archive (apt-get source) and autoconf/automake/libtool/dpkg-dev: `third_party/deps.sh
# --wolfssl-src` provides them and is run here when root. Built once: a stamp names the key of the
# Debian version and the flags (`wolfssl.sh --key` prints it; the Makefile names the cache folder
# after it); about 1 minute on 2 cores (56 s of CPU). Nothing is copied into the tree: sources
# live under $1/src.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/wolfssl}"
ver=$(dpkg-query -W -f '${Version}' libwolfssl-dev 2>/dev/null || true)
[ -n "$ver" ] || { echo "wolfssl.sh: libwolfssl-dev is not installed" >&2; exit 1; }
# Debian's own feature set (--enable-distro; it builds nearly everything, twice: shared and
# static, ~1m45 on 2 cores) plus what serval needs on top: AES-NI and the Intel assembly, SP
# math for P-256, TLS 1.3, SNI, ALPN, tickets, X.509 verification with SANs (alt names,
# alternative chains), the OpenSSL-compatible calls of src/tls, src/control/k8s and src/echo,
# system CA certificates. A trimmed set without --enable-distro (first build ~1 min) was tried
# and dropped: with it wolfSSL_CTX_check_private_key refused the conformance suite's RSA-2048
# certificate and key (tls-validity-checks-certificate), which the distro build accepts, so the
# HTTPS conformance cases failed. The behaviour switches serval relies on are forced and
# checked: WOLFSSL_ALWAYS_KEEP_SNI (the SNI stays readable after the handshake: the Host/SNI
# listener check), WOLFSSL_ALWAYS_VERIFY_CB (the upstream client's verify callback checks SANs
# on a verified leaf), OPENSSL_COMPATIBLE_DEFAULTS (CA bundles load without date checks;
# verification checks dates). NEED_DEFS are checked in the result.
FLAGS=(--enable-distro --enable-aesni --enable-intelasm --enable-sp --enable-sp-asm
       --enable-tls13 --enable-sni --enable-alpn --enable-session-ticket --enable-ecc
       --enable-aesgcm --enable-chacha --enable-poly1305 --enable-curve25519 --enable-supportedcurves
       --enable-opensslall --enable-opensslextra --enable-altcertchains --enable-sessioncerts
       --enable-keygen --enable-sys-ca-certs
       --enable-static --disable-shared --disable-examples --disable-crypttests)
XDEFS=(-DWOLFSSL_ALWAYS_KEEP_SNI -DWOLFSSL_ALWAYS_VERIFY_CB -DOPENSSL_COMPATIBLE_DEFAULTS
       -DKEEP_PEER_CERT -DWOLFSSL_ALT_NAMES -DHAVE_EX_DATA)
NEED_DEFS="WOLFSSL_TLS13 HAVE_SNI HAVE_ALPN HAVE_SESSION_TICKET HAVE_ECC HAVE_AESGCM HAVE_CHACHA
           HAVE_POLY1305 HAVE_SUPPORTED_CURVES HAVE_CURVE25519 OPENSSL_EXTRA OPENSSL_ALL
           WOLFSSL_AESNI WOLFSSL_SP_X86_64_ASM WC_RSA_PSS WOLFSSL_ALT_NAMES WOLFSSL_ALT_CERT_CHAINS
           KEEP_PEER_CERT HAVE_EX_DATA WOLFSSL_ALWAYS_KEEP_SNI WOLFSSL_ALWAYS_VERIFY_CB
           OPENSSL_COMPATIBLE_DEFAULTS WOLFSSL_SYS_CA_CERTS"
key=$(printf '%s ' "$ver" "${FLAGS[@]}" "${XDEFS[@]}" | sha256sum | cut -c1-12)
# --key: print the key (the Makefile names the cache folder after it, so that checkouts with
# other flags keep their own build instead of rebuilding a shared one back and forth)
if [ "$out" = --key ]; then
    echo "$key"
    exit 0
fi
stamp="$out/.built-$key"
built() { [ -f "$stamp" ] && [ -f "$out/lib/libwolfssl.a" ] && [ -f "$out/include/wolfssl/options.h" ]; }
built && exit 0
# $out may be a cache shared by several checkouts (see the Makefile): one build at a time.
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
built && exit 0

echo "wolfssl.sh: building wolfSSL $ver from Debian's source package into $out (once, ~1 min)" >&2
need=()
for t in autoreconf automake libtoolize dpkg-source; do
    command -v "$t" >/dev/null 2>&1 || need+=("$t")
done
if [ ${#need[@]} -gt 0 ] || ! [[ "$(apt-cache showsrc wolfssl 2>/dev/null || true)" == *"Package: wolfssl"* ]]; then
    if [ "$(id -u)" = 0 ]; then
        third_party/deps.sh --wolfssl-src
    else
        echo "wolfssl.sh: missing ${need[*]:-} (or deb-src entries); as root run: third_party/deps.sh --wolfssl-src" >&2
        echo "wolfssl.sh: or build with: make WOLFSSL=system" >&2
        exit 1
    fi
fi

src="$out/src"
mkdir -p "$src"
dsc="$src/wolfssl_${ver#*:}.dsc"
if [ ! -f "$dsc" ]; then
    (cd "$src" && apt-get source --download-only "wolfssl=$ver" >&2) || {
        echo "wolfssl.sh: apt-get source failed; add deb-src lines for deb.debian.org (Types: deb deb-src)" >&2
        exit 1
    }
fi
tree="$src/tree"
if [ ! -f "$tree/configure" ] || [ ! -f "$src/.tree-$ver" ]; then
    rm -rf "$tree"
    dpkg-source -x "$dsc" "$tree" >&2
    (cd "$tree" && ./autogen.sh >&2)
    touch "$src/.tree-$ver"
fi
abs_out=$(cd "$out" && pwd)
(cd "$tree" && ./configure --prefix="$abs_out" "${FLAGS[@]}" CFLAGS="-O2 -g ${XDEFS[*]}" >&2 &&
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j2 >&2 &&
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make install >&2)
# Debian's packaging leaves options.h out of the installed headers; the build needs it.
cp "$tree/wolfssl/options.h" "$out/include/wolfssl/options.h"
for d in $NEED_DEFS; do
    grep -q "^#define $d\$" "$out/include/wolfssl/options.h" || {
        echo "wolfssl.sh: the rebuilt wolfSSL lacks $d (configure ${FLAGS[*]})" >&2
        exit 1
    }
done
rm -f "$out"/.built-*
touch "$stamp"
