"""Helpers for serval-gateway integration tests (Python standard library only).

A test script calls check(name, cond, detail) for each assertion; each prints "ok - name" or
"not ok - name" for tests/run.sh to count, and finish() exits non-zero if any failed. Processes
started with start() are killed at exit. Binaries come from $SV_BIN_DIR (the ASan build under
`make test`). Every wait is bounded.
"""
import atexit
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("SV_BIN_DIR", os.path.join(ROOT, "build", "asan"))
RELEASE_BIN_DIR = os.environ.get("SV_RELEASE_BIN_DIR", os.path.join(ROOT, "build"))
LOG_DIR = os.path.join(ROOT, "build", "test-logs")

_procs = []
_failures = 0


def binary(name, release=False):
    return os.path.join(RELEASE_BIN_DIR if release else BIN_DIR, name)


def check(name, cond, detail=""):
    """Record one assertion."""
    global _failures
    if cond:
        print(f"ok - {name}", flush=True)
    else:
        _failures += 1
        print(f"not ok - {name}" + (f": {detail}" if detail else ""), flush=True)
    return cond


def finish():
    """Stop every process (reporting sanitizer failures) and exit with the result."""
    global _failures
    for p in list(_procs):
        _failures += stop(p)
    sys.exit(1 if _failures else 0)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def start(args, name=None, env=None):
    """Start a process with stdout/stderr going to build/test-logs/<name>.log."""
    os.makedirs(LOG_DIR, exist_ok=True)
    name = name or os.path.basename(args[0])
    log_path = os.path.join(LOG_DIR, f"{os.path.basename(sys.argv[0])}.{name}.{len(_procs)}.log")
    log = open(log_path, "wb")
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                         start_new_session=True)
    p.log_path = log_path
    p.sv_name = name
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=15.0):
    """Stop a process; returns 1 if it exited badly (sanitizer report, crash), else 0."""
    if p in _procs:
        _procs.remove(p)
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
            print(f"# {p.sv_name} did not stop within {timeout}s", flush=True)
            return 1
    text = read_log(p)
    bad = ("ERROR: AddressSanitizer" in text or "runtime error:" in text
           or "ERROR: LeakSanitizer" in text or p.returncode not in (0, -signal.SIGTERM))
    if bad:
        print(f"# {p.sv_name} exited with {p.returncode}; log {p.log_path}:", flush=True)
        for line in text.splitlines()[-40:]:
            print(f"#   {line}", flush=True)
        return 1
    return 0


def read_log(p):
    try:
        with open(p.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def raw_request(host, port, data, timeout=5.0, read_until_close=True):
    """Send bytes, return all bytes received until the peer closes (or timeout)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
            if not read_until_close:
                break
        return b"".join(chunks)


def parse_response(data):
    """Split one HTTP/1.1 response: (status, {lower-name: [values]}, body-bytes-after-head)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None, {}, data
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, body


atexit.register(lambda: [stop(p, signal.SIGKILL, 2) for p in list(_procs)])
