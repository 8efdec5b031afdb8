#!/bin/sh
# make conformance [CASE=Name]: run the Gateway API conformance corpus (../shared/conformance)
# against build/serval-gateway; fails on a regression against tests/conformance/expected-pass.txt.
# The runner's own logic is self-tested first. Extra arguments go to runner.py (see --help).
here=$(dirname "$0")
/usr/bin/python3 "$here/selftest.py" || exit 1
exec /usr/bin/python3 "$here/runner.py" --expected "$here/expected-pass.txt" "$@"
