#!/usr/bin/env python3
"""Start-up contract of serval-gateway: io_uring refused (EPERM/ENOSYS injected into
io_uring_setup with strace) exits 1 with a message naming the errno, kernel.io_uring_disabled and
the fix; bad flags print the usage and exit 2 naming the flag."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svtest as t  # noqa: E402
from svtest import check  # noqa: E402

GW = t.binary("serval-gateway", release=True)


def run(args, strace=None, timeout=20):
    argv = [GW] + args
    if strace:
        argv = ["strace", "-f", "-o", "/dev/null", "-e", "trace=io_uring_setup", "-e",
                f"inject=io_uring_setup:error={strace}"] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


def main():
    quick = ["--admin", "127.0.0.1:0", "--listen", f"{t.unique_addr()}:1",
             "--route", "/=127.0.0.1:2"]
    if shutil.which("strace"):
        for err in ("EPERM", "ENOSYS"):
            rc, msg = run(quick, strace=err)
            check(f"refused {err}: exit status 1", rc == 1, (rc, msg[-300:]))
            check(f"refused {err}: names the errno", err in msg, msg[-300:])
            check(f"refused {err}: shows kernel.io_uring_disabled",
                  "kernel.io_uring_disabled=" in msg, msg[-300:])
            check(f"refused {err}: gives the fix (sysctl, seccomp profile)",
                  "sysctl" in msg and "deploy/seccomp/serval-io-uring.json" in msg, msg[-300:])
    else:
        print("skip - strace not installed: io_uring refusal not simulated")
    for args, flag in ((["--workers", "0"] + quick, "--workers"),
                       (["--bogus"], "--bogus"),
                       (["--idle-timeout", "soon"] + quick, "--idle-timeout"),
                       (["--max-conns", "-3"] + quick, "--max-conns"),
                       (["--listen", "127.0.0.1:1"], "--listen"),
                       (["--listen", "127.0.0.1:1", "--route", "nonsense"], "--route")):
        rc, msg = run(args)
        check(f"bad flag {flag}: exit 2", rc == 2, (rc, msg[-200:]))
        check(f"bad flag {flag}: message names it and shows the usage",
              flag in msg and "usage:" in msg, msg[-300:])
    t.finish()


if __name__ == "__main__":
    main()
