#!/bin/sh
# make conformance [CASE=Name]: run the Gateway API conformance corpus (../shared/conformance)
# against build/serval-gateway; fails on a regression against tests/conformance/expected-pass.txt.
# Extra arguments go to runner.py (see its --help).
here=$(dirname "$0")
exec /usr/bin/python3 "$here/runner.py" --expected "$here/expected-pass.txt" "$@"
