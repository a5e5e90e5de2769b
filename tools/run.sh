#!/usr/bin/env bash
# Sets up the machine, builds (optimised) and starts the main program on its embedded default,
# in the foreground until Ctrl-C. Until the proxy exists, that is the runtime's echo example on
# 127.0.0.1:7000 (MONOLAKE_RUNTIME=io_uring|epoll|auto picks the backend). Extra arguments go
# to the program.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel build --config=opt //examples/echo
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)/examples/echo/echo"
if [ $# -eq 0 ]; then set -- 127.0.0.1:7000; fi
exec "$bin" "$@"
