#!/usr/bin/env bash
# Runs a Python integration test with Debian's interpreter (the one that sees Debian's python3-*
# packages): run_python_test.sh TEST.py ARGS...
set -euo pipefail
exec /usr/bin/python3 -u "$@"
