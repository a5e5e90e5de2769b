#!/usr/bin/env bash
# Runs a Python integration test with Debian's interpreter (the one that sees Debian's python3-*
# packages): run_python_test.sh TEST.py ARGS...
# tests/lib (proxytest.py) is put on PYTHONPATH when it is in the runfiles (a data dependency on
# @monolake//tests/lib:proxytest), so a test in a workspace outside can `import proxytest`.
set -euo pipefail
lib="${TEST_SRCDIR:-}/monolake/tests/lib"
if [ -n "${TEST_SRCDIR:-}" ] && [ -f "$lib/proxytest.py" ]; then
  export PYTHONPATH="$lib${PYTHONPATH:+:$PYTHONPATH}"
fi
exec /usr/bin/python3 -u "$@"
