#!/usr/bin/env bash
# Runs every test: the unit-test binary (ASan+UBSan), then each integration test under
# tests/integration/ (test_*.py with Debian's python3, test_*.sh with bash) against the ASan build.
# Integration tests print "ok - name" / "not ok - name" lines (TAP-like); a test that exits non-zero
# without printing a failure counts as one failure. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

only_integration=0
[ "${1:-}" = "--integration-only" ] && only_integration=1
filter="${SV_TEST_FILTER:-}"

export SV_BIN_DIR="${SV_BIN_DIR:-$PWD/build/asan}"
export SV_RELEASE_BIN_DIR="$PWD/build"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

passed=0
failed=0
skipped=0
failed_names=()
logdir=build/test-logs
mkdir -p "$logdir"

count_output() { # $1 = log file, $2 = exit code, $3 = name
    local p f s
    p=$(grep -c '^ok - ' "$1" || true)
    f=$(grep -c '^not ok - ' "$1" || true)
    s=$(grep -c '^skip - ' "$1" || true)
    if [ "$2" != 0 ] && [ "$f" = 0 ]; then
        f=1
        echo "not ok - $3 (exit status $2)" | tee -a "$1"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    if [ "$f" != 0 ]; then
        failed_names+=("$3")
    fi
}

if [ $only_integration = 0 ]; then
    echo "== unit tests (ASan+UBSan)"
    log="$logdir/unit.log"
    timeout 300 build/asan/unit-tests $filter >"$log" 2>&1
    rc=$?
    grep -v '^ok - ' "$log" | grep -v '^[0-9]* passed' || true
    count_output "$log" $rc unit-tests
    echo "   unit: $(tail -n 1 "$log")"
fi

for t in tests/integration/test_*; do
    [ -f "$t" ] || continue
    name=$(basename "$t")
    if [ -n "$filter" ] && [[ "$name" != *"$filter"* ]]; then continue; fi
    echo "== $name"
    log="$logdir/$name.log"
    start=$(date +%s)
    case "$t" in
    *.py) timeout 300 "$PY" "$t" >"$log" 2>&1 ;;
    *.sh) timeout 300 bash "$t" >"$log" 2>&1 ;;
    *) continue ;;
    esac
    rc=$?
    [ $rc = 124 ] && echo "not ok - $name (timed out)" >>"$log"
    grep -E '^(ok|not ok|skip) - ' "$log" | sed 's/^/   /'
    if [ $rc != 0 ]; then tail -n 30 "$log" | grep -vE '^(ok|not ok|skip) - ' | sed 's/^/   | /'; fi
    count_output "$log" $rc "$name"
    echo "   ($(( $(date +%s) - start )) s)"
done

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]} (logs in $logdir/)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed = 0 ]
