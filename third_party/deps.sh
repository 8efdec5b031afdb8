#!/usr/bin/env bash
# Installs (as root) or names (otherwise) the Debian packages serval-gateway builds and tests with.
# Usage: third_party/deps.sh [--check|--install|--all|--wolfssl-src]
#   --check    exit 1 and print the apt-get line when a build dependency is missing (make calls this)
#   --install  install the build dependencies if missing (root only)
#   --all      install build, test and benchmark dependencies (what .ci/run and `make test` need)
#   --wolfssl-src  what third_party/wolfssl.sh needs to rebuild wolfSSL from Debian's source
#              package: autoconf, automake, libtool, dpkg-dev, and deb-src entries (a copy of the
#              system's deb entries as /etc/apt/sources.list.d/serval-deb-src.sources) when
#              `apt-cache showsrc wolfssl` finds nothing
# With WOLFSSL=system in the environment (make passes its WOLFSSL) the source build is skipped.
# ca-certificates: the system CA bundle BackendTLSPolicy wellKnownCACertificates: System loads.
# Third-party code is never copied into the tree: llhttp's C sources come from node-llhttp
# (/usr/share/llhttp/*.c, header in /usr/share/include/llhttp/), the rest are shared libraries.
set -euo pipefail

BUILD_PKGS="build-essential liburing-dev libwolfssl-dev libcjson-dev node-llhttp libyaml-dev libpcre2-dev libnghttp2-dev ca-certificates"
TEST_PKGS="curl python3 openssl wrk iproute2 procps"
BENCH_PKGS="nginx-light haproxy nghttp2-client"
WOLFSSL_SRC_PKGS="autoconf automake libtool dpkg-dev"
CHECK_PKGS="testssl.sh"
WOLFSSL="${WOLFSSL:-aesni}"

missing_build() {
    local miss=()
    [ -f /usr/include/liburing.h ] || miss+=(liburing-dev)
    [ -f /usr/include/wolfssl/ssl.h ] || miss+=(libwolfssl-dev)
    [ -f /usr/include/cjson/cJSON.h ] || miss+=(libcjson-dev)
    [ -f /usr/share/llhttp/llhttp.c ] || miss+=(node-llhttp)
    [ -f /usr/include/yaml.h ] || miss+=(libyaml-dev)
    [ -f /usr/include/pcre2.h ] || miss+=(libpcre2-dev)
    [ -f /usr/include/nghttp2/nghttp2.h ] || miss+=(libnghttp2-dev)
    command -v cc >/dev/null 2>&1 || miss+=(build-essential)
    if [ "$WOLFSSL" != system ]; then
        command -v autoreconf >/dev/null 2>&1 || miss+=(autoconf)
        command -v automake >/dev/null 2>&1 || miss+=(automake)
        command -v libtoolize >/dev/null 2>&1 || miss+=(libtool)
        command -v dpkg-source >/dev/null 2>&1 || miss+=(dpkg-dev)
    fi
    echo "${miss[@]:-}"
}

# deb-src entries mirroring the deb ones (deb822 .sources files and one-line sources.list), so
# that `apt-get source wolfssl` works on a stock Debian image (which ships only Types: deb).
ensure_deb_src() {
    [[ "$(apt-cache showsrc wolfssl 2>/dev/null || true)" == *"Package: wolfssl"* ]] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "deps: apt has no source entries; as root add deb-src lines mirroring the deb ones" >&2
        exit 1
    fi
    local out=/etc/apt/sources.list.d/serval-deb-src.sources f
    : >"$out.tmp"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && [ "$f" != "$out" ] || continue
        # one stanza per paragraph; keep the deb ones, as deb-src
        awk 'BEGIN { RS = ""; ORS = "\n\n" }
             /(^|\n)Types:[^\n]*(^|[ \t])deb([ \t]|\n|$)/ && !/Enabled: *no/ {
                 sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' "$f" >>"$out.tmp"
    done
    if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+\([^[:space:]]\+\)[[:space:]]\+\(.*\)$/Types: deb-src\nURIs: \2\nSuites: \3\nComponents: \4\n/p' \
            /etc/apt/sources.list >>"$out.tmp"
    fi
    if [ ! -s "$out.tmp" ]; then
        rm -f "$out.tmp"
        echo "deps: found no deb entries to mirror as deb-src" >&2
        exit 1
    fi
    mv "$out.tmp" "$out"
    echo "deps: added deb-src entries ($out)" >&2
    apt-get update -q >&2
}

missing_cmds() {
    local miss=()
    for pkg in $TEST_PKGS $BENCH_PKGS $CHECK_PKGS; do
        dpkg -s "$pkg" >/dev/null 2>&1 || miss+=("$pkg")
    done
    echo "${miss[@]:-}"
}

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages; as root run: apt-get update && apt-get install -y $*" >&2
        exit 1
    fi
    echo "deps: installing $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "$@" >&2
    # Debian starts packaged daemons on install; the benchmarks run their own instances.
    for svc in nginx haproxy h2o; do
        command -v systemctl >/dev/null 2>&1 && systemctl stop "$svc" >/dev/null 2>&1 || true
        [ -x "/etc/init.d/$svc" ] && "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    done
}

mode=${1:---check}
case "$mode" in
--check)
    miss=$(missing_build)
    if [ -n "$miss" ]; then
        if [ "$(id -u)" = 0 ]; then apt_install $miss; else
            echo "deps: missing build dependencies; run: sudo apt-get install -y $miss" >&2
            exit 1
        fi
    fi
    ;;
--install)
    miss=$(missing_build)
    [ -z "$miss" ] || apt_install $miss
    ;;
--all)
    miss="$(missing_build) $(missing_cmds)"
    miss=$(echo $miss)
    [ -z "$miss" ] || apt_install $miss
    [ "$WOLFSSL" = system ] || ensure_deb_src
    ;;
--wolfssl-src)
    miss=()
    for pkg in $WOLFSSL_SRC_PKGS; do dpkg -s "$pkg" >/dev/null 2>&1 || miss+=("$pkg"); done
    [ ${#miss[@]} = 0 ] || apt_install "${miss[@]}"
    ensure_deb_src
    ;;
*)
    echo "usage: $0 [--check|--install|--all]" >&2
    exit 2
    ;;
esac
