"""Helpers for serval-gateway integration tests (Python standard library only).

A test script calls check(name, cond, detail) for each assertion; each prints "ok - name" or
"not ok - name" for tests/run.sh to count, and finish() exits non-zero if any failed. Processes
started with start() are killed at exit. Binaries come from $SV_BIN_DIR (the ASan build under
`make test`). Every wait is bounded.
"""
import atexit
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
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



# ---- addresses --------------------------------------------------------------------------------

_addr_rng = random.Random(os.getpid() ^ int(time.time() * 1000))
_addr_count = 0


def unique_addr():
    """A loopback address of its own for this test process (127.A.B.C, A random per process,
    never 127.0.0.1), so that tests running in parallel (other worktrees too) do not clash.
    Bind port 0 on it, or use free_port(addr)."""
    global _addr_count
    _addr_count += 1
    if not hasattr(unique_addr, "_a"):
        unique_addr._a = _addr_rng.randrange(2, 255)
        unique_addr._b = _addr_rng.randrange(0, 200)
    n = _addr_count
    return f"127.{unique_addr._a}.{(unique_addr._b + n // 250) % 256}.{1 + n % 250}"


def wait_log(p, pattern, timeout=10.0):
    """Wait until the process log matches the regex <pattern>; returns the match or None (also
    None at once if the process exited)."""
    rx = re.compile(pattern)
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = rx.search(read_log(p))
        if m:
            return m
        if p.poll() is not None:
            return rx.search(read_log(p))
        time.sleep(0.02)
    return None


# ---- serval-echo and serval-gateway -----------------------------------------------------------

def start_echo(addr=None, port=0, pod=None, ns=None, service=None, args=(), env=None,
               release=False, timeout=10.0):
    """Start serval-echo on addr:port (defaults: unique_addr(), a kernel-chosen port) and wait
    until it listens. Returns the process with .addr, .port and .pod set (a pod name shaped like
    a Deployment's: '<pod>-<hash>-<hash>' is up to the caller). Raises RuntimeError if it does not
    come up."""
    addr = addr or unique_addr()
    argv = [binary("serval-echo", release), "--listen", f"{addr}:{port}"]
    if pod is not None:
        argv += ["--pod", pod]
    if ns is not None:
        argv += ["--namespace", ns]
    if service is not None:
        argv += ["--service", service]
    argv += list(args)
    p = start(argv, name=f"echo-{pod or 'x'}", env=env)
    m = wait_log(p, r"listening on \S+:(\d+)", timeout)
    if not m:
        raise RuntimeError(f"serval-echo did not start; log {p.log_path}:\n{read_log(p)[-2000:]}")
    p.addr, p.port, p.pod = addr, int(m.group(1)), pod
    return p


def start_gateway(args, admin=True, wait=None, release=False, env=None, timeout=20.0):
    """Start serval-gateway with <args>. Unless <args> has --admin or admin=False, adds
    --admin <unique_addr()>:<free port> (so parallel tests never fight over 127.0.0.1:9901) and
    waits until GET /healthz answers 200. <wait> = (host, port) also waits for that listener.
    Returns the process with .admin = (host, port) or None. Raises RuntimeError on failure."""
    args = list(args)
    admin_addr = None
    if "--admin" in args:
        h, _, pt = args[args.index("--admin") + 1].rpartition(":")
        admin_addr = (h, int(pt))
    elif admin:
        h = unique_addr()
        admin_addr = (h, free_port(h))
        args += ["--admin", f"{admin_addr[0]}:{admin_addr[1]}"]
    p = start([binary("serval-gateway", release)] + args, name="gateway", env=env)
    p.admin = admin_addr
    deadline = time.time() + timeout
    up = False
    while time.time() < deadline and p.poll() is None:
        try:
            if admin_addr and http_request(admin_addr[0], admin_addr[1], "GET", "/healthz",
                                           timeout=1.0).status != 200:
                raise OSError("not healthy yet")
            if wait and not wait_port(wait[0], wait[1], 0.5):
                raise OSError("not listening yet")
            up = True
            break
        except OSError:
            time.sleep(0.05)
    if not up:
        raise RuntimeError(f"serval-gateway did not start; log {p.log_path}:\n"
                           f"{read_log(p)[-3000:]}")
    return p


def echo_stats(host, port):
    """serval-echo's GET /stats: {'connections': accepted, 'requests': answered (not counting
    /stats), 'live': open now}."""
    return http_request(host, port, "GET", "/stats").json()


def pattern_bytes(n, offset=0):
    """The bytes serval-echo sends for /bytes/N and /slow: byte i is 'a' + (i % 26)."""
    alpha = b"abcdefghijklmnopqrstuvwxyz"
    start_at = offset % 26
    reps = (n + start_at) // 26 + 1
    return (alpha * reps)[start_at:start_at + n]


# ---- a tiny HTTP/1.1 client -------------------------------------------------------------------

class Response:
    """status (int), reason, version ('HTTP/1.1'), headers [(name, value)...] in wire order,
    body (bytes), interim [(status, headers)] for 1xx answers received before this one,
    closed (the server closed the connection after it)."""

    def __init__(self):
        self.status = None
        self.reason = ""
        self.version = ""
        self.headers = []
        self.body = b""
        self.interim = []
        self.closed = False

    def header(self, name, default=None):
        """First value of header <name> (case-insensitive)."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        import json
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<Response {self.status} {len(self.body)} bytes>"


class _Reader:
    """Buffered reads from a socket with an overall deadline."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        self.eof = False

    def _fill(self):
        if self.eof:
            return False
        try:
            b = self.sock.recv(262144)
        except ConnectionResetError:
            self.eof = True
            raise
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def line(self, limit=1 << 20):
        while b"\n" not in self.buf:
            if len(self.buf) > limit or not self._fill():
                raise EOFError("connection closed inside a header line")
        i = self.buf.index(b"\n")
        out, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return out.rstrip(b"\r\n")

    def exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed with {n - len(self.buf)} body bytes missing")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out


def _read_head(rd):
    status_line = rd.line().decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"bad status line {status_line!r}")
    headers = []
    for _ in range(1000):
        line = rd.line()
        if not line:
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers


def read_response(rd, method="GET"):
    """Read one response (skipping 1xx answers other than 101) from a _Reader."""
    resp = Response()
    for _ in range(10):
        version, status, reason, headers = _read_head(rd)
        if 100 <= status < 200 and status != 101:
            resp.interim.append((status, headers))
            continue
        break
    resp.version, resp.status, resp.reason, resp.headers = version, status, reason, headers
    te = (resp.header("transfer-encoding") or "").lower()
    cl = resp.header("content-length")
    if method == "HEAD" or status in (204, 304) or status < 200:
        pass
    elif "chunked" in te:
        parts = []
        for _ in range(10_000_000):
            size = int(rd.line().split(b";")[0].strip(), 16)
            if size == 0:
                while rd.line():  # trailers
                    pass
                break
            parts.append(rd.exact(size))
            rd.exact(2)
        resp.body = b"".join(parts)
    elif cl is not None:
        resp.body = rd.exact(int(cl))
    else:
        resp.body = rd.rest()
        resp.closed = True
    conn = (resp.header("connection") or "").lower()
    if "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn):
        resp.closed = True
    return resp


def _encode_request(host, port, method, path, headers, body, chunks):
    headers = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in headers}
    if "host" not in names:
        headers.insert(0, ("Host", f"{host}:{port}"))
    if chunks is not None and "transfer-encoding" not in names:
        headers.append(("Transfer-Encoding", "chunked"))
    elif body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1")


def _body_pieces(body, chunks):
    if chunks is not None:
        for c in chunks:
            if c:
                yield f"{len(c):x}\r\n".encode() + c + b"\r\n"
        yield b"0\r\n\r\n"
    elif body:
        for i in range(0, len(body), 1 << 20):
            yield body[i:i + (1 << 20)]


class Client:
    """A keep-alive HTTP/1.1 connection: request() sends one request and reads its response on
    the same socket; send_raw()/read() allow pipelining. Bodies are sent from a helper thread so
    a server that streams its answer while reading (e.g. /echo-body) cannot deadlock us."""

    def __init__(self, host, port, timeout=5.0, source=None):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.rd = _Reader(self.sock, timeout)
        self.closed = False

    def send_raw(self, data):
        self.sock.sendall(data)

    def read(self, method="GET"):
        r = read_response(self.rd, method)
        if r.closed:
            self.closed = True
        return r

    def request(self, method="GET", path="/", headers=None, body=None, chunks=None):
        """Send one request (body bytes with Content-Length, or chunks = iterable of bytes sent
        chunked) and return its Response. Raises OSError/EOFError/ValueError on failure."""
        self.sock.sendall(_encode_request(self.host, self.port, method, path, headers, body,
                                          chunks))
        err = []

        def pump():
            try:
                for piece in _body_pieces(body, chunks):
                    self.sock.sendall(piece)
            except OSError as e:
                err.append(e)

        t = None
        if body or chunks is not None:
            t = threading.Thread(target=pump, daemon=True)
            t.start()
        try:
            return self.read(method)
        finally:
            if t:
                t.join(self.rd.timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http_request(host, port, method="GET", path="/", headers=None, body=None, timeout=5.0,
                 chunks=None, source=None):
    """One request on a fresh connection (closed afterwards). headers: dict or [(k, v)]; Host
    defaults to host:port; body bytes get Content-Length; chunks (iterable of bytes) are sent
    chunked. Returns a Response (status, headers, body...); raises OSError (refused, reset,
    timeout), EOFError (closed early) or ValueError (malformed response)."""
    with Client(host, port, timeout, source) as c:
        return c.request(method, path, headers, body, chunks)


# ---- a tiny WebSocket client --------------------------------------------------------------------

class WebSocket:
    """Client side of RFC 6455 over a raw socket: send(opcode, payload) masks as a client must;
    recv() returns (opcode, payload) of the next frame (FIN assumed)."""

    def __init__(self, host, port, path="/ws", headers=None, timeout=5.0):
        import base64
        self.key = base64.b64encode(os.urandom(16)).decode()
        hdrs = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", self.key), ("Sec-WebSocket-Version", "13")]
        hdrs += list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
        self.client = Client(host, port, timeout)
        self.client.send_raw(_encode_request(host, port, "GET", path, hdrs, None, None))
        self.response = self.client.read()
        self.rd = self.client.rd

    def expected_accept(self):
        import base64
        import hashlib
        guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        return base64.b64encode(hashlib.sha1((self.key + guid).encode()).digest()).decode()

    def send(self, opcode, payload, fin=True):
        import struct
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mv = bytes(b ^ mask[i & 3] for i, b in enumerate(payload)) if n < 4096 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
             ).to_bytes(n, "big")
        self.client.send_raw(head + mask + mv)

    def recv(self):
        import struct
        b0, b1 = self.rd.exact(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack(">H", self.rd.exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.rd.exact(8))[0]
        mask = self.rd.exact(4) if b1 & 0x80 else None
        data = self.rd.exact(n)
        if mask:
            data = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
        return b0 & 0x0f, data

    def close(self):
        self.client.close()


# ---- process and scripted-server helpers --------------------------------------------------------

def rss_kb(p):
    """Resident set size of process <p> (a Popen or a pid) in KiB, or None if it is gone."""
    pid = getattr(p, "pid", p)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class TcpServer:
    """A scripted raw TCP server for misbehaving-upstream tests: handler(sock, addr) runs on its
    own thread for every accepted connection (the socket is closed when it returns). Listens on
    addr (default unique_addr()) port 0; .addr, .port, .accepted (count); close() stops it."""

    def __init__(self, handler, addr=None, timeout=10.0):
        self.addr = addr or unique_addr()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.addr, 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.timeout = timeout
        self.accepted = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _serve(self, conn, peer):
        try:
            conn.settimeout(self.timeout)
            self.handler(conn, peer)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _run(self):
        while not self._stop:
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True).start()

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def read_request_head(sock, limit=1 << 20):
    """Read from <sock> up to the end of one request head; returns (head bytes, extra bytes)."""
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < limit:
        b = sock.recv(65536)
        if not b:
            break
        buf += b
    head, sep, rest = buf.partition(b"\r\n\r\n")
    return head + sep, rest


atexit.register(lambda: [stop(p, signal.SIGKILL, 2) for p in list(_procs)])
