#!/usr/bin/env bash
# Sets up the machine, builds monolake (optimised) and runs it in the foreground until Ctrl-C:
# on its embedded default configuration, or with the arguments given (e.g. -c FILE).
# MONOLAKE_RUNTIME=io_uring|epoll|auto overrides the configuration's runtime_type.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel build --config=opt //proxy:monolake
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)/proxy/monolake"
exec "$bin" "$@"
