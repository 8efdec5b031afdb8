#!/usr/bin/env python3
"""HTTPS operations in folder mode:

- certificate rotation under load: wrk (keep-alive), a Python keep-alive client and a Python
  new-connection-per-request client run while the Secret of the listener is rewritten several
  times; zero errors anywhere, every new handshake after a rotation soon presents the new
  certificate, the established keep-alive connection stays the same one throughout;
- close_notify: a response with Connection: close and an idle keep-alive timeout both end with our
  close_notify (Python's ssl with suppress_ragged_eofs=False raises on a bare TCP close);
- /metrics TLS failure counters by reason: handshake timeout, unknown SNI, the client's fatal
  alert, garbage; completed handshakes and close_notify counted;
- no stall when ciphertext waits for plaintext room: pipelined requests (a large head, bodies up
  to 40 KB) written as TLS records of 1 byte to 16 KiB, with a small receive-buffer ring; every
  answer arrives, bodies intact (src/dataplane/conn.c, comment on tls_in).

Certificates come from tests/tls/gen-certs.sh (every leaf there is a valid pair; the listener
serves whichever its Secret holds, clients do not verify here but compare fingerprints)."""
import hashlib
import os
import random
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import (backend, docs, gateway, gateway_class, http_route,  # noqa: E402
                       gen_certs, https_listener, read_text, tls_secret,
                       write_atomic)
from svtest import (check, finish, free_port, http_request, start_echo,  # noqa: E402
                    start_gateway, stop, unique_addr, wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def manifests(port, port2, e):
    """HTTPS listeners a (a.example.com, cert-a) and def (any name, cert-def) on <port>, only
    (only.b.test, cert-def) on <port2>; one route to the echo backend <e>."""
    listeners = (https_listener(port, "cert-a", "a", "a.example.com")
                 + https_listener(port, "cert-def", "def")
                 + https_listener(port2, "cert-def", "only", "only.b.test"))
    return docs(gateway_class(), gateway(listeners=listeners),
                http_route("[{matches: [{path: {value: /}}], backendRefs: [{name: svc, port: 80}]}]"),
                backend("svc", e.addr, e.port))


# the certificate cert-a holds, in rotation order (ec_a first)
ROTATION = ["ec_a", "ec_wild", "rsa_b", "ec_b", "ec_def", "ec_a"]


def secrets_yaml(certs, a_leaf, def_leaf="ec_def"):
    return docs(tls_secret("cert-a", certs, a_leaf), tls_secret("cert-def", certs, def_leaf))


def fingerprint_pem(certs, leaf):
    pem = read_text(certs, leaf + ".crt")
    first = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_connect(host, port, sni, timeout=5.0):
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return client_ctx().wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=False)
    except BaseException:
        raw.close()
        raise


def read_response(s):
    """One HTTP/1.1 response with Content-Length from TLS socket <s>: (status, headers, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise OSError("closed before the response head")
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            raise OSError("closed inside the response body")
        body += d
    return status, hdrs, body[:n]


def get(s, path, host="a.example.com", close=False):
    extra = "Connection: close\r\n" if close else ""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
    return read_response(s)


def ends_with_close_notify(s, timeout=5.0):
    """Read to the end: True when the peer's close_notify arrived (recv returns b''), False on a
    bare TCP close (SSLEOFError with suppress_ragged_eofs=False), None on timeout."""
    s.settimeout(timeout)
    try:
        for _ in range(1000):
            if not s.recv(65536):
                return True
    except ssl.SSLEOFError:
        return False
    except (socket.timeout, ssl.SSLError, OSError):
        return None
    return None


def metrics(gw):
    r = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics", timeout=3.0)
    sums = {}
    for m in re.finditer(r"^serval_(tls_\w+)\{worker=\"\d+\"\} (\d+)$",
                         r.body.decode(errors="replace"), re.M):
        sums[m.group(1)] = sums.get(m.group(1), 0) + int(m.group(2))
    return sums


def wait_metric(gw, name, minimum, timeout=5.0):
    deadline = time.time() + timeout
    v = metrics(gw).get(name, 0)
    while v < minimum and time.time() < deadline:
        time.sleep(0.05)
        v = metrics(gw).get(name, 0)
    return v


class Loop(threading.Thread):
    """Runs fn() until stopped; counts calls and errors (first few kept)."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.ok, self.errors, self.samples = fn, 0, 0, []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.fn()
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is a test error
                self.errors += 1
                if len(self.samples) < 5:
                    self.samples.append(repr(e))


def rotation_under_load(gw, conf, certs, host, port):
    fps = {leaf: fingerprint_pem(certs, leaf) for leaf in set(ROTATION)}
    seen = {"fp": None}

    def new_conn():
        with tls_connect(host, port, "a.example.com") as s:
            fp = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
            st, _, body = get(s, "/new", close=True)
            if st != 200 or b'"/new"' not in body.replace(b" ", b""):
                raise OSError(f"new connection: status {st}")
            seen["fp"] = fp

    ka = tls_connect(host, port, "a.example.com")
    ka_fp = hashlib.sha256(ka.getpeercert(binary_form=True)).hexdigest()
    ka_socks = set()

    def keep_alive():
        st, hdrs, _ = get(ka, "/ka")
        ka_socks.add(id(ka))
        if st != 200 or hdrs.get("connection", "").lower() == "close":
            raise OSError(f"keep-alive: status {st} {hdrs}")

    # wrk sends no usable SNI (an IP address): the hostname-less listener (cert-def, rotated
    # too). One instance keeps its connections, the other opens one per request (Connection:
    # close; wrk resumes the session with its ticket across the rotations).
    wrks = []
    if shutil.which("wrk"):
        for extra in ([], ["-H", "Connection: close"]):
            wrks.append(subprocess.Popen(["wrk", "-t1", "-c4", "-d14s", "--timeout", "10s", *extra,
                                          f"https://{host}:{port}/wrk"], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT))
    loops = [Loop(new_conn), Loop(keep_alive)]
    for lp in loops:
        lp.start()
    time.sleep(1.0)
    observed = []
    start = time.time()
    for leaf in ROTATION[1:]:
        write_atomic(conf, "secrets.yaml", secrets_yaml(certs, leaf, leaf))
        deadline = time.time() + 5.0
        while time.time() < deadline and seen["fp"] != fps[leaf]:
            time.sleep(0.02)
        observed.append((leaf, seen["fp"] == fps[leaf]))
        time.sleep(0.5)
        if time.time() - start > 11.0:
            break
    time.sleep(0.5)
    for lp in loops:
        lp.halt.set()
    for lp in loops:
        lp.join(10)
    wouts = []
    for wrk in wrks:
        try:
            wouts.append(wrk.communicate(timeout=30)[0].decode(errors="replace"))
        except subprocess.TimeoutExpired:
            wrk.kill()
            wrk.communicate()
            wouts.append("wrk did not finish")
    ka.close()

    check("tls ops: rotated the certificate %d times while clients ran" % (len(ROTATION) - 1),
          len(observed) == len(ROTATION) - 1, observed)
    check("tls ops: every rotation is seen by new handshakes",
          all(ok for _, ok in observed), observed)
    nc, kl = loops
    check("tls ops: new-connection client: requests, zero errors",
          nc.ok > 10 and nc.errors == 0, (nc.ok, nc.errors, nc.samples))
    check("tls ops: keep-alive client: requests, zero errors, one connection, old certificate",
          kl.ok > 10 and kl.errors == 0 and len(ka_socks) == 1 and ka_fp == fps["ec_a"],
          (kl.ok, kl.errors, kl.samples))
    r = http_request(gw.admin[0], gw.admin[1], "GET", "/metrics", timeout=3.0)
    idle = re.findall(r"^serval_(?:idle|header)_timeouts_total\{[^}]*\} \d+$",
                      r.body.decode(errors="replace"), re.M)
    for wout, kind in zip(wouts, ("keep-alive", "new connections")):
        m = re.search(r"(\d+) requests in", wout)
        bad = re.search(r"Socket errors|Non-2xx", wout)
        check(f"tls ops: wrk ({kind}) over HTTPS during the rotations: requests, zero errors",
              m and int(m.group(1)) > 10 and not bad, (wout[-800:], idle))
    if not wrks:
        print("skip - tls ops: wrk missing")


def close_notify_checks(gw, host, port):
    s = tls_connect(host, port, "a.example.com")
    st, _, _ = get(s, "/bye", close=True)
    check("tls ops: Connection: close answered", st == 200, st)
    check("tls ops: Connection: close ends with our close_notify", ends_with_close_notify(s) is True)
    s.close()
    # idle keep-alive connection: the gateway runs with --idle-timeout 4s (not shorter: on a
    # loaded machine a keep-alive client of the rotation part can pause for a second)
    s = tls_connect(host, port, "a.example.com")
    st, _, _ = get(s, "/idle")
    check("tls ops: idle timeout ends with our close_notify",
          st == 200 and ends_with_close_notify(s, timeout=15.0) is True)
    s.close()
    # our answer to the client's close_notify
    s = tls_connect(host, port, "a.example.com")
    st, _, _ = get(s, "/then-unwrap")
    try:
        s.settimeout(5.0)
        s.unwrap()  # sends close_notify, waits for the peer's
        ok = True
    except (ssl.SSLError, OSError) as e:
        ok = repr(e)
    check("tls ops: the client's close_notify is answered with ours", st == 200 and ok is True, ok)
    s.close()


def failure_counters(gw, host, port, port2):
    base = metrics(gw)
    # unknown SNI on a bind without a hostname-less listener
    try:
        with tls_connect(host, port2, "nobody.test"):
            pass
        ok = False
    except (ssl.SSLError, OSError):
        ok = True
    check("tls ops: unknown SNI refused", ok)
    v = wait_metric(gw, "tls_handshake_failures_unknown_sni_total",
                    base.get("tls_handshake_failures_unknown_sni_total", 0) + 1)
    check("tls ops: /metrics counts the unknown SNI",
          v == base.get("tls_handshake_failures_unknown_sni_total", 0) + 1, (base, v))
    # the client does not trust our certificate: it sends a fatal alert
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED  # no CA loaded: verification fails
    raw = socket.create_connection((host, port), timeout=5.0)
    try:
        ctx.wrap_socket(raw, server_hostname="a.example.com").close()
        ok = False
    except ssl.SSLError:
        ok = True
    raw.close()
    check("tls ops: untrusting client aborts the handshake", ok)
    v = wait_metric(gw, "tls_handshake_failures_alert_total",
                    base.get("tls_handshake_failures_alert_total", 0) + 1)
    check("tls ops: /metrics counts the client's alert",
          v == base.get("tls_handshake_failures_alert_total", 0) + 1, (base, v))
    # garbage instead of a ClientHello
    with socket.create_connection((host, port), timeout=5.0) as g:
        g.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            g.recv(100)
        except OSError:
            pass
    v = wait_metric(gw, "tls_handshake_failures_protocol_total",
                    base.get("tls_handshake_failures_protocol_total", 0) + 1)
    check("tls ops: /metrics counts the garbage handshake",
          v == base.get("tls_handshake_failures_protocol_total", 0) + 1, (base, v))
    # nothing at all: the header timeout (3 s) cuts the handshake off
    with socket.create_connection((host, port), timeout=5.0) as g:
        g.sendall(b"\x16\x03\x01")  # a record header, then silence
        try:
            g.settimeout(5.0)
            g.recv(100)
        except OSError:
            pass
    v = wait_metric(gw, "tls_handshake_failures_timeout_total",
                    base.get("tls_handshake_failures_timeout_total", 0) + 1)
    check("tls ops: /metrics counts the handshake timeout",
          v == base.get("tls_handshake_failures_timeout_total", 0) + 1, (base, v))
    m = metrics(gw)
    check("tls ops: /metrics counts completed handshakes and close_notify",
          m.get("tls_handshakes_total", 0) > 10 and m.get("tls_close_notify_sent_total", 0) >= 3, m)


def parse_responses(buf):
    """Complete Content-Length responses at the front of <buf>: ([(status, body)], rest)."""
    out = []
    while b"\r\n\r\n" in buf:
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        n = 0
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            if k.strip().lower() == "content-length":
                n = int(v.strip())
            if k.strip().lower() == "transfer-encoding":
                raise OSError("unexpected chunked response")
        if len(rest) < n:
            break
        out.append((int(lines[0].split()[1]), rest[:n]))
        buf = rest[n:]
    return out, buf


def records_stress(host, port, seed):
    """Pipelined requests sent as records of random sizes; returns (responses, expected)."""
    rnd = random.Random(seed)
    reqs, want = [], []
    for i in range(24):
        if i % 3 == 0:
            pad = "p" * rnd.randint(1000, 7000)
            reqs.append(f"GET /g{i} HTTP/1.1\r\nHost: a.example.com\r\nX-Pad: {pad}\r\n\r\n"
                        .encode())
            want.append(None)
        else:
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40000)))
            reqs.append(f"POST /echo-body HTTP/1.1\r\nHost: a.example.com\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            want.append(body)
    blob = b"".join(reqs)
    chunks, off = [], 0
    while off < len(blob):
        n = rnd.choice((1, 1, 2, 5, 17, 100, 700, 1500, 4096, 9000, 16384))
        chunks.append(blob[off:off + n])
        off += n
    s = tls_connect(host, port, "a.example.com")
    s.setblocking(False)
    got, buf, pending, idx = [], b"", b"", 0
    deadline = time.time() + 30
    while time.time() < deadline and len(got) < len(reqs):
        if not pending and idx < len(chunks):
            pending, idx = chunks[idx], idx + 1
        if pending:
            try:
                n = s.send(pending)
                pending = pending[n:]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        try:
            d = s.recv(65536)
            if not d:
                break
            buf += d
            more, buf = parse_responses(buf)
            got += more
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            if not pending and idx >= len(chunks):
                select.select([s], [], [], 0.05)
    s.close()
    return got, want


def stall_checks(host, port):
    for seed in (1, 2, 3):
        got, want = records_stress(host, port, seed)
        ok = len(got) == len(want) and all(
            st == 200 and (w is None or body == w) for (st, body), w in zip(got, want))
        check(f"tls ops: pipelined requests in 1 B..16 KiB records all answered (seed {seed})", ok,
              (len(got), len(want), [st for st, _ in got][:30]))


def main():
    if not shutil.which("openssl"):
        print("skip - tls ops: openssl missing")
        return
    d = tempfile.mkdtemp(prefix="sv-tlsops-")
    gw = e = None
    try:
        certs = gen_certs(d)
        e = start_echo(pod="pod-tlsops")
        conf = os.path.join(d, "conf")
        os.mkdir(conf)
        host = unique_addr()
        port, port2 = free_port(host), free_port(host)
        write_atomic(conf, "gateway.yaml", manifests(port, port2, e))
        write_atomic(conf, "secrets.yaml", secrets_yaml(certs, ROTATION[0]))
        gw = start_gateway(["--config-dir", conf, "--bind", host, "--workers", "2",
                            "--header-timeout", "3s", "--idle-timeout", "4s",
                            "--recv-buffers", "32"])
        up = wait_port(host, port, 10.0) and wait_port(host, port2, 10.0)
        check("tls ops: HTTPS ports listen", up)
        if not up:
            return
        rotation_under_load(gw, conf, certs, host, port)
        stall_checks(host, port)
        close_notify_checks(gw, host, port)
        failure_counters(gw, host, port, port2)
        rc = stop(gw)
        gw = None
        check("tls ops: clean exit (ASan: no leak)", rc == 0, rc)
    finally:
        if gw:
            stop(gw)
        if e:
            stop(e)
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
