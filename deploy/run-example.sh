#!/usr/bin/env bash
# `make run`: serval-gateway in folder mode (--config-dir) in front of two serval-echo backends,
# with a live route change. Uses a copy of deploy/examples/folder/ (so your edits to the copy, not
# the repository, drive the gateway) and loopback only:
#   gateway  127.0.0.1:8080 (Gateway "web")     admin 127.0.0.1:9901 (/config shows status)
#   blue     127.0.0.1:18081                    green 127.0.0.1:18082
# Runs the demo, then keeps serving until Ctrl-C (or exits after the demo with --demo-only).
# SV_EXAMPLE_ADDR=127.x.y.z moves everything to another loopback address (ports stay the same).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SV_BIN_DIR:-build}
DEMO_ONLY=0
[ "${1:-}" = "--demo-only" ] && DEMO_ONLY=1
dir=$(mktemp -d /tmp/serval-example-XXXXXX)
logs=$(mktemp -d /tmp/serval-example-logs-XXXXXX)
ADDR=${SV_EXAMPLE_ADDR:-127.0.0.1}
cp deploy/examples/folder/*.yaml "$dir/"
sed -i "s/127\.0\.0\.1/$ADDR/g" "$dir"/*.yaml
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
    echo "(logs kept in $logs)"
}
trap cleanup EXIT INT TERM

"$BIN/serval-echo" --listen "$ADDR:18081" --pod blue-7d9f-x1 --namespace example >"$logs/blue.log" 2>&1 &
pids+=($!)
"$BIN/serval-echo" --listen "$ADDR:18082" --pod green-5c4b-y2 --namespace example >"$logs/green.log" 2>&1 &
pids+=($!)
"$BIN/serval-gateway" --config-dir "$dir" --bind "$ADDR" --workers 2 --admin "$ADDR:9901" \
    >"$logs/gateway.log" 2>&1 &
pids+=($!)

ask() { # path [header]
    local h=()
    [ -n "${2:-}" ] && h=(-H "$2")
    printf '  GET %-8s %-16s -> ' "$1" "${2:-}"
    curl -s -m 2 "${h[@]}" "http://$ADDR:8080$1" |
        python3 -c 'import json, sys
try:
    print(json.load(sys.stdin).get("pod") or "(no pod)")
except ValueError:
    print("(not an echo answer)")'
}
for _ in $(seq 50); do curl -s -m 1 -o /dev/null "http://$ADDR:8080/" && break; sleep 0.1; done
if ! kill -0 "${pids[2]}" 2>/dev/null; then
    tail -n 5 "$logs/gateway.log" >&2
    echo "serval-gateway did not start (ports 8080/9901 on $ADDR busy? try SV_EXAMPLE_ADDR=127.0.0.2)" >&2
    exit 1
fi

echo "== folder: $dir"
ask /app
ask /app "X-Canary: yes"
ask /green
echo "== live change: /app -> green (editing $dir/routes.yaml)"
sed -i 's/- {name: blue, port: 80}/- {name: green, port: 80}/' "$dir/routes.yaml"
sleep 0.3
ask /app
echo "== a broken file keeps the last good generation; GET /config shows the error:"
echo "kind: [" >"$dir/broken.yaml"
sleep 0.3
ask /app
curl -s -m 2 "http://$ADDR:9901/config" | grep '"error"' | head -1
rm -f "$dir/broken.yaml"
[ $DEMO_ONLY = 1 ] && exit 0
echo "== serving; edit $dir/*.yaml, curl http://$ADDR:8080/app, GET http://$ADDR:9901/config; Ctrl-C stops"
wait "${pids[2]}"
