# Shell helpers shared by the benchmark scripts (perf/bench.sh, perf/bench_tls_e2e.sh); sourced,
# not run. The caller owns the PIDS array: every process it starts in the background goes there,
# and bench_cleanup (installed as the EXIT trap by bench_traps) kills them all.

PIDS=()
bench_cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
}
bench_traps() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# free_port: a TCP port that was free on 127.0.0.1 a moment ago.
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port HOST PORT PID: 0 once HOST:PORT accepts, 1 if PID died or 5 s passed.
wait_port() {
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# proc_ticks PID: utime+stime of the whole process (all threads), in clock ticks.
proc_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null
}

# median: the median of the numbers on stdin (one per line), or an empty line for none.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# stop_proxy PID: SIGTERM, up to 5 s to exit, then SIGKILL; reaps it.
stop_proxy() {
    kill "$1" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
