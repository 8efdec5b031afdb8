"""Requests the way upstream's conformance client sends them (Go net/http with keep-alive off),
and the judging of one response (upstream CompareRoundTrip). Python standard library only, plus
curl for HTTP/2."""
import base64
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import urllib.parse

TIMEOUT = 10.0


class Result:
    def __init__(self):
        self.status = None
        self.headers = []  # (name, value) in order
        self.body = b""
        self.proto = "HTTP/1.1"
        self.error = None  # transport error text
        self.tls_requested_client_cert = None

    def header(self, name):
        """Values of a header joined with ',' (None when absent)."""
        v = [val for k, val in self.headers if k.lower() == name.lower()]
        return ",".join(v) if v else None

    def __repr__(self):
        if self.error:
            return f"<transport error: {self.error}>"
        return f"<{self.status} {self.body[:200]!r}>"


def canonical(name):
    """Go's textproto.CanonicalMIMEHeaderKey."""
    if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", name):
        return name
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def go_match_host(pattern, host):
    """crypto/x509 matchHostnames: case-insensitive, '*' only as the whole leftmost label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern or not host:
        return False
    pl, hl = pattern.split("."), host.split(".")
    if len(pl) != len(hl):
        return False
    for i, (p, h) in enumerate(zip(pl, hl)):
        if i == 0 and p == "*":
            continue
        if p != h:
            return False
    return True


def _verify_name(sock, server_name):
    cert = sock.getpeercert()
    if not cert:
        return "no peer certificate"
    sans = [v for k, v in cert.get("subjectAltName", ()) if k in ("DNS", "IP Address")]
    try:
        import ipaddress
        ipaddress.ip_address(server_name)
        ok = server_name in sans
    except ValueError:
        ok = any(go_match_host(s, server_name) for s in sans)
    return None if ok else f"certificate is not valid for {server_name} (SANs {sans})"


def send(addr, port, req, cluster=None, timeout=TIMEOUT):
    """One request on a new connection. req is the corpus' request dict (path already
    substituted). Returns a Result."""
    res = Result()
    proto = req.get("protocol") or "HTTP"
    if proto in ("H2", "H2C_PRIOR_KNOWLEDGE"):
        return _send_curl(addr, port, req, cluster, timeout)
    scheme = req.get("scheme") or "http"
    default_port = 443 if scheme == "https" else 80
    host = req.get("host") or ""
    if not host:
        host = addr if port == default_port else f"{addr}:{port}"
    lines = [f"{req.get('method') or 'GET'} {req.get('path') or '/'} HTTP/1.1", f"Host: {host}",
             "User-Agent: Go-http-client/1.1"]
    body = req.get("body")
    body_b = body.encode() if isinstance(body, str) else (body or b"")
    if body_b:
        lines.append(f"Content-Length: {len(body_b)}")
    for k, v in (req.get("headers") or {}).items():
        lines.append(f"{canonical(k)}: {v}")
    echo_set = ",".join(f"{k}:{v}" for k, v in (req.get("backend_set_response_headers") or {})
                        .items())
    lines.append(f"X-Echo-Set-Header: {echo_set}")
    lines.append("Connection: close")
    lines.append("Accept-Encoding: gzip")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body_b
    sock = None
    try:
        sock = socket.create_connection((addr, port), timeout=timeout)
        if scheme == "https" or proto == "HTTPS":
            ctx, server_name = _tls_context(req, cluster, res)
            if ctx is None:
                return res
            sock = ctx.wrap_socket(sock, server_hostname=server_name or None)
            res.tls_requested_client_cert = getattr(ctx, "_requested", None)
            err = _verify_name(sock, server_name or addr)
            if err:
                res.error = err
                return res
        sock.settimeout(timeout)
        sock.sendall(data)
        raw = b""
        while True:
            b = sock.recv(65536)
            if not b:
                break
            raw += b
            if len(raw) > 16 << 20:
                break
            if _complete(raw, req.get("method") or "GET"):
                break
        _parse(raw, res, req.get("method") or "GET")
    except (OSError, ssl.SSLError, ValueError) as e:
        res.error = f"{type(e).__name__}: {e}"
    finally:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
    return res


def _tls_context(req, cluster, res):
    tls = req.get("tls") or {}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # Go's rules are applied by _verify_name
    ctx.verify_mode = ssl.CERT_REQUIRED
    ref = tls.get("trusted_ca_from_secret")
    if ref and cluster is not None:
        path = cluster.secret_pem_file(ref["namespace"], ref["name"], ref.get("key") or "tls.crt")
        if path is None:
            res.error = f"runner: trusted CA secret {ref['namespace']}/{ref['name']} not found"
            return None, None
        ctx.load_verify_locations(path)
    cc = tls.get("client_cert_from_secret")
    if cc and cluster is not None:
        crt = cluster.secret_pem_file(cc["namespace"], cc["name"], "tls.crt")
        key = cluster.secret_pem_file(cc["namespace"], cc["name"], "tls.key")
        if crt and key:
            ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx, tls.get("server_name")


def _split_head(raw):
    i = raw.find(b"\r\n\r\n")
    return (raw[:i], raw[i + 4:]) if i >= 0 else (None, None)


def _complete(raw, method):
    head, rest = _split_head(raw)
    if head is None:
        return False
    hl = head.decode("latin-1").split("\r\n")
    parts = hl[0].split(" ")
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if 100 <= code < 200 and code != 101:
        return _complete(rest, method)
    if method == "HEAD" or code in (204, 304):
        return True
    hdrs = {}
    for ln in hl[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        return rest.endswith(b"0\r\n\r\n")
    if "content-length" in hdrs:
        try:
            return len(rest) >= int(hdrs["content-length"])
        except ValueError:
            return False
    return False


def _parse(raw, res, method):
    head, rest = _split_head(raw)
    if head is None:
        res.error = "EOF before a complete response head" if raw else "EOF (no response)"
        return
    hl = head.decode("latin-1").split("\r\n")
    parts = hl[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        res.error = f"malformed status line {hl[0]!r}"
        return
    code = int(parts[1])
    if 100 <= code < 200 and code != 101:
        return _parse(rest, res, method)
    res.status = code
    res.proto = parts[0]
    res.headers = []
    for ln in hl[1:]:
        k, _, v = ln.partition(":")
        res.headers.append((k.strip(), v.strip()))
    te = (res.header("transfer-encoding") or "").lower()
    if method == "HEAD" or code in (204, 304):
        res.body = b""
    elif "chunked" in te:
        out, pos = b"", 0
        for _ in range(1 << 20):
            i = rest.find(b"\r\n", pos)
            if i < 0:
                break
            size = int(rest[pos:i].split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out += rest[i + 2:i + 2 + size]
            pos = i + 2 + size + 2
        res.body = out
    elif res.header("content-length") is not None:
        try:
            res.body = rest[:int(res.header("content-length").split(",")[0])]
        except ValueError:
            res.body = rest
    else:
        res.body = rest


def _precheck_tls(addr, port, req, cluster, server_name, timeout):
    """Handshake once with the request's trust settings and Go's hostname rules; returns None
    when the server's certificate is acceptable, else the reason."""
    res = Result()
    ctx, _ = _tls_context(req, cluster, res)
    if ctx is None:
        return res.error
    try:
        with socket.create_connection((addr, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as sock:
                return _verify_name(sock, server_name)
    except (OSError, ssl.SSLError) as e:
        return f"TLS: {e}"


def _send_curl(addr, port, req, cluster, timeout):
    """HTTP/2 (ALPN h2 over TLS, or h2c with prior knowledge) through curl."""
    res = Result()
    scheme = req.get("scheme") or "http"
    tls = req.get("tls") or {}
    server_name = tls.get("server_name") or addr
    host = req.get("host") or ""
    default_port = 443 if scheme == "https" else 80
    if not host:
        host = addr if port == default_port else f"{addr}:{port}"
    with tempfile.TemporaryDirectory(prefix="conf-h2-") as d:
        hdr_file, body_file = os.path.join(d, "h"), os.path.join(d, "b")
        args = ["curl", "-sS", "--max-time", str(int(timeout)), "-X", req.get("method") or "GET",
                "-D", hdr_file, "-o", body_file, "-w", "%{http_version}",
                "-H", f"Host: {host}", "-H", "User-Agent: Go-http-client/2.0",
                "-H", "Accept-Encoding: gzip", "--path-as-is"]
        echo_set = ",".join(f"{k}:{v}" for k, v in (req.get("backend_set_response_headers") or {})
                            .items())
        args += ["-H", f"X-Echo-Set-Header: {echo_set}"]
        for k, v in (req.get("headers") or {}).items():
            args += ["-H", f"{canonical(k)}: {v}"]
        if req.get("protocol") == "H2C_PRIOR_KNOWLEDGE":
            args += ["--http2-prior-knowledge", f"http://{addr}:{port}{req.get('path') or '/'}"]
        else:
            ref = tls.get("trusted_ca_from_secret")
            if ref and cluster is not None:
                # curl (OpenSSL) refuses wildcard SANs such as "*.org" that Go's crypto/x509
                # accepts: verify chain and name the Go way on a separate handshake, then
                # let curl skip its own check
                err = _precheck_tls(addr, port, req, cluster, server_name, timeout)
                if err:
                    res.error = err
                    return res
                args += ["-k"]
            args += ["--http2", "--resolve", f"{server_name}:{port}:{addr}",
                     f"https://{server_name}:{port}{req.get('path') or '/'}"]
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            res.error = "timeout"
            return res
        if r.returncode != 0:
            res.error = f"curl exit {r.returncode}: {r.stderr.strip()[-200:]}"
            return res
        with open(hdr_file, "rb") as f:
            head = f.read().decode("latin-1")
        with open(body_file, "rb") as f:
            res.body = f.read()
        blocks = [b for b in head.split("\r\n\r\n") if b.strip()]
        hl = blocks[-1].split("\r\n") if blocks else []
        if not hl:
            res.error = "no response"
            return res
        parts = hl[0].split(" ")
        res.status = int(parts[1])
        res.proto = "HTTP/2.0" if r.stdout.strip() == "2" else parts[0]
        for ln in hl[1:]:
            k, _, v = ln.partition(":")
            res.headers.append((k.strip(), v.strip()))
    return res


# --- judging ------------------------------------------------------------------------------

def echo_json(res):
    """The echo server's JSON (dict) when Content-Type is exactly application/json, else None."""
    ct = res.header("content-type")
    if ct != "application/json":
        return None
    try:
        return json.loads(res.body)
    except ValueError:
        return None


def judge(res, req, exp, cluster=None):
    """upstream CompareRoundTrip. Returns None on success, else the reason (string)."""
    if res.error:
        return f"transport error: {res.error}"
    want = exp.get("status")
    want = want if isinstance(want, list) else [want]
    if res.status in (408, 504) and (408 in want or 504 in want):
        return None
    if res.status not in want:
        body = res.body[:160].decode("latin-1", "replace")
        return f"status {res.status}, want {want} (body {body!r})"
    if exp.get("response_protocol") and res.proto != exp["response_protocol"]:
        return f"protocol {res.proto}, want {exp['response_protocol']}"
    if res.status in (200, 204):
        j = echo_json(res) or {}
        br = exp.get("backend_request") or {}
        method = j.get("method") if j else (req.get("method") or "GET")
        path = j.get("path", "")
        host = j.get("host", "")
        headers = j.get("headers") or {}
        if br.get("host") is not None and host != br["host"]:
            return f"backend saw host {host!r}, want {br['host']!r}"
        if path != (br.get("path") or ""):
            return f"backend saw path {path!r}, want {br.get('path')!r}"
        if br.get("method") and method != br["method"]:
            return f"backend saw method {method!r}, want {br['method']!r}"
        if j.get("namespace", "") != (exp.get("namespace") or ""):
            return f"namespace {j.get('namespace', '')!r}, want {exp.get('namespace')!r}"
        lower = {k.lower(): v for k, v in headers.items()}
        for k, v in (br.get("headers") or {}).items():
            got = lower.get(k.lower())
            if got is None:
                return f"backend request lacks header {k} (has {sorted(headers)})"
            joined = ",".join(got) if isinstance(got, list) else str(got)
            if joined != v:
                return f"backend header {k}={joined!r}, want {v!r}"
        for k in br.get("absent_headers") or []:
            if k.lower() in lower:
                return f"backend request has header {k} (should be absent)"
        if br.get("http_port") is not None and str(j.get("httpPort")) != str(br["http_port"]):
            return f"httpPort {j.get('httpPort')!r}, want {br['http_port']!r}"
        for k, v in (exp.get("response_headers") or {}).items():
            got = res.header(k)
            if got is None:
                return f"response lacks header {k}"
            if got != v:
                return f"response header {k}={got!r}, want {v!r}"
        ws = exp.get("ignore_whitespace_in_response_headers")
        for k, opts in (exp.get("response_header_one_of") or {}).items():
            got = res.header(k)
            if got is None:
                return f"response lacks header {k}"
            norm = (lambda s: s.replace(" ", "")) if ws else (lambda s: s)
            if norm(got) not in [norm(o) for o in opts]:
                return f"response header {k}={got!r}, want one of {opts!r}"
        for k in exp.get("absent_response_headers") or []:
            if res.header(k) is not None:
                return f"response has header {k} (should be absent)"
        if exp.get("backend") and not str(j.get("pod", "")).startswith(exp["backend"]):
            return f"pod {j.get('pod', '')!r}, want backend {exp['backend']!r}"
        if br.get("tls_server_name") and (j.get("tls") or {}).get("serverName") != \
                br["tls_server_name"]:
            return f"backend TLS SNI {(j.get('tls') or {}).get('serverName')!r}, " \
                   f"want {br['tls_server_name']!r}"
        cc = br.get("tls_client_cert_from_secret")
        if cc:
            pem = cluster.secret_pem_file(cc["namespace"], cc["name"]) if cluster else None
            want_pem = open(pem).read() if pem else None
            if not want_pem or want_pem not in ((j.get("tls") or {}).get("peerCertificates")
                                                or []):
                return "backend did not see the client certificate"
    red = exp.get("redirect")
    if red and 300 <= res.status <= 308:
        loc = res.header("location")
        if not loc:
            return "redirect without Location"
        u = urllib.parse.urlsplit(loc)
        scheme = red.get("scheme") or req.get("scheme") or "http"
        if u.scheme != scheme:
            return f"Location scheme {u.scheme!r}, want {scheme!r} ({loc})"
        if red.get("host") is not None and u.hostname != red["host"]:
            return f"Location host {u.hostname!r}, want {red['host']!r} ({loc})"
        want_path = red.get("path") or req.get("path", "/").split("?")[0]
        if u.path != want_path:
            return f"Location path {u.path!r}, want {want_path!r} ({loc})"
        try:
            port = u.port
        except ValueError:
            return f"Location port invalid ({loc})"
        if red.get("port") is None:
            ok = port is None or port == (443 if scheme == "https" else 80)
            if not ok:
                return f"Location port {port}, want none/default ({loc})"
        elif port != int(red["port"]):
            return f"Location port {port}, want {red['port']} ({loc})"
    return None


def websocket_echo(addr, port, path, origin, messages, timeout=TIMEOUT):
    """Open a WebSocket through the gateway and check each message ((opcode, bytes): 1 text,
    2 binary) comes back identical. Returns None or the reason."""
    host = addr if port == 80 else f"{addr}:{port}"
    key = base64.b64encode(os.urandom(16)).decode()
    head = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin}\r\n\r\n")
    try:
        s = socket.create_connection((addr, port), timeout=timeout)
    except OSError as e:
        return f"connect: {e}"
    try:
        s.sendall(head.encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            b = s.recv(4096)
            if not b:
                return f"connection closed during handshake ({raw[:120]!r})"
            raw += b
        status = raw.split(b"\r\n", 1)[0]
        if b" 101" not in status:
            return f"handshake answered {status!r}"
        buf = raw.split(b"\r\n\r\n", 1)[1]
        for opcode, payload in messages:
            mask = os.urandom(4)
            n = len(payload)
            hdr = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                   bytes([0x80 | 126]) + n.to_bytes(2, "big"))
            s.sendall(hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))
            while True:
                if len(buf) >= 2:
                    ln = buf[1] & 0x7f
                    off = 2
                    if ln == 126:
                        if len(buf) < 4:
                            ln = None
                        else:
                            ln, off = int.from_bytes(buf[2:4], "big"), 4
                    if ln is not None and len(buf) >= off + ln:
                        op, data, buf = buf[0] & 0x0f, buf[off:off + ln], buf[off + ln:]
                        if op == opcode and data == payload:
                            break
                        if op in (0x9, 0xA):
                            continue
                        return f"echoed frame op {op} {data[:60]!r}, want {payload[:60]!r}"
                b = s.recv(65536)
                if not b:
                    return "connection closed before the echo"
                buf += b
        return None
    except OSError as e:
        return f"websocket: {e}"
    finally:
        s.close()
