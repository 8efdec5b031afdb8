#!/usr/bin/env bash
# Installs (as root) or names (otherwise) the Debian packages serval-gateway builds and tests with.
# Usage: third_party/deps.sh [--check|--install|--all]
#   --check    exit 1 and print the apt-get line when a build dependency is missing (make calls this)
#   --install  install the build dependencies if missing (root only)
#   --all      install build, test and benchmark dependencies (what .ci/run and `make test` need)
# Third-party code is never copied into the tree: llhttp's C sources come from node-llhttp
# (/usr/share/llhttp/*.c, header in /usr/share/include/llhttp/), the rest are shared libraries.
set -euo pipefail

BUILD_PKGS="build-essential liburing-dev libwolfssl-dev libcjson-dev node-llhttp libyaml-dev libpcre2-dev"
TEST_PKGS="curl python3 openssl wrk iproute2 procps"
BENCH_PKGS="nginx-light haproxy nghttp2-client"

missing_build() {
    local miss=()
    [ -f /usr/include/liburing.h ] || miss+=(liburing-dev)
    [ -f /usr/include/wolfssl/ssl.h ] || miss+=(libwolfssl-dev)
    [ -f /usr/include/cjson/cJSON.h ] || miss+=(libcjson-dev)
    [ -f /usr/share/llhttp/llhttp.c ] || miss+=(node-llhttp)
    [ -f /usr/include/yaml.h ] || miss+=(libyaml-dev)
    [ -f /usr/include/pcre2.h ] || miss+=(libpcre2-dev)
    command -v cc >/dev/null 2>&1 || miss+=(build-essential)
    echo "${miss[@]:-}"
}

missing_cmds() {
    local miss=()
    for pkg in $TEST_PKGS $BENCH_PKGS; do
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
    ;;
*)
    echo "usage: $0 [--check|--install|--all]" >&2
    exit 2
    ;;
esac
