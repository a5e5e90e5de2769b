#!/usr/bin/env bash
# A Bazel workspace outside this checkout depends on it as @monolake, the way bazel/repositories.bzl
# documents: local_repository + monolake_repositories(). It builds a cc_binary on
# @monolake//runtime, //transport, //http and //tls, an ml_cc_test from @monolake//bazel:defs.bzl,
# and a Python test on @monolake//tests/lib:proxytest run by @monolake//tests:run_python_test.sh,
# then runs `bazel build //...` and `bazel test //...` there.
#
#   tests/external_workspace_test.sh         BAZEL_JOBS=1 for --jobs=1 (default 2)
#
# Not a Bazel test: Bazel inside a Bazel sandbox is fragile. tools/test.sh runs it as a step of
# its own. The workspace and its Bazel output base live in a temporary directory, removed at
# exit (after `bazel shutdown`); compiled objects are shared through the disk cache in
# ~/.cache/monolake/bazel-disk, so a second run takes seconds. Bounded by a 900 s deadline.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/.." && pwd)
jobs=${BAZEL_JOBS:-2}
deadline=$((SECONDS + 900))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ml-external.XXXXXX")
ws="$tmp/ws"
cleanup() {
  if [ -d "$ws" ]; then (cd "$ws" && timeout 60 bazel shutdown >/dev/null 2>&1) || true; fi
  # The output base holds read-only directories; chmod -R does not follow the symlinks in it
  # (external/monolake points at this checkout) and rm -rf removes the links, not their targets.
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$ws/outside"

cat >"$ws/WORKSPACE" <<EOF
workspace(name = "outside")

local_repository(
    name = "monolake",
    path = "$checkout",
)

load("@monolake//bazel:repositories.bzl", "monolake_repositories")

monolake_repositories("$checkout")
EOF

# The flags of the checkout's .bazelrc that matter offline; -std=c++20 and the warnings come from
# the macros (and the plain cc_binary below sets -std=c++20 itself).
cat >"$ws/.bazelrc" <<EOF
startup --output_base=$tmp/output_base
common --announce_rc=false
build --disk_cache=~/.cache/monolake/bazel-disk
build --jobs=$jobs
build --spawn_strategy=processwrapper-sandbox,local
build --genrule_strategy=processwrapper-sandbox,local
test --test_output=errors
test --test_summary=short
test --test_verbose_timeout_warnings=false
EOF

cat >"$ws/outside/BUILD.bazel" <<'EOF'
load("@rules_cc//cc:defs.bzl", "cc_binary")
load("@monolake//bazel:defs.bzl", "ml_cc_test")

# A plain cc_binary, as any workspace would write it.
cc_binary(
    name = "outside",
    srcs = ["main.cc"],
    copts = ["-std=c++20"],
    deps = [
        "@monolake//http",
        "@monolake//runtime",
        "@monolake//tls",
        "@monolake//transport",
    ],
)

# Monolake's own test macro: its copts, its select() on @monolake//bazel:opt, its gtest_main.
ml_cc_test(
    name = "outside_test",
    srcs = ["outside_test.cc"],
    deps = [
        "@monolake//runtime",
        "@monolake//transport",
    ],
)

# Monolake's Python test helpers.
sh_test(
    name = "helpers_test",
    srcs = ["@monolake//tests:run_python_test.sh"],
    args = [
        "$(location helpers_test.py)",
        "$(location :outside)",
    ],
    data = [
        "helpers_test.py",
        ":outside",
        "@monolake//tests/lib:proxytest",
    ],
)
EOF

cat >"$ws/outside/main.cc" <<'EOF'
// A program outside the Monolake workspace: a runtime running one small task, and a few types of
// the transport, http and tls libraries.
#include <chrono>
#include <cstdio>
#include <string>

#include "http/message.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "tls/tls.h"
#include "transport/address.h"

using namespace monolake;

runtime::Task<int> answer() {
  auto slept = co_await runtime::sleep(std::chrono::milliseconds(1));
  co_return slept ? 42 : -1;
}

int main() {
  auto rt = runtime::Runtime::create({});
  if (!rt) {
    std::fprintf(stderr, "outside: %s\n", rt.error().to_string().c_str());
    return 1;
  }
  const int value = (*rt)->block_on(answer());
  auto address = transport::SocketAddress::parse("127.0.0.1:8080");
  http::RequestHead head;
  head.method = "GET";
  head.target = "/a?b";
  head.headers.add("Host", "example.test");
  auto backend = tls::parse_backend("gnutls");
  if (value != 42 || !address || !backend || head.path() != "/a") return 1;
  std::printf("outside: %d on %s, %s, %s, %s\n", value,
              std::string(runtime::backend_kind_name((*rt)->backend_kind())).c_str(),
              address->to_string().c_str(), std::string(head.authority()).c_str(),
              std::string(tls::backend_name(*backend)).c_str());
  return 0;
}
EOF

cat >"$ws/outside/outside_test.cc" <<'EOF'
#include <gtest/gtest.h>

#include <chrono>

#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/address.h"

using namespace monolake;

runtime::Task<int> answer() {
  auto slept = co_await runtime::sleep(std::chrono::milliseconds(1));
  co_return slept ? 42 : -1;
}

TEST(Outside, RuntimeRunsATask) {
  auto rt = runtime::Runtime::create({});
  ASSERT_TRUE(rt) << rt.error().to_string();
  EXPECT_EQ((*rt)->block_on(answer()), 42);
}

TEST(Outside, TransportParsesAnAddress) {
  auto address = transport::SocketAddress::parse("127.0.0.1:8080");
  ASSERT_TRUE(address);
  EXPECT_EQ(address->port(), 8080);
}
EOF

cat >"$ws/outside/helpers_test.py" <<'EOF'
"""proxytest from @monolake//tests/lib, imported through run_python_test.sh's PYTHONPATH."""
import subprocess
import sys

import proxytest as pt


def echo_upstream():
    upstream = pt.EchoServer(tag=b"up:")
    try:
        assert pt.exchange(upstream.port, b"hello") == b"up:hello"
    finally:
        upstream.close()


def outside_binary():
    out = subprocess.run([sys.argv[1]], check=True, capture_output=True, text=True).stdout
    assert out.startswith("outside: 42 on "), out


pt.main([("echo_upstream", echo_upstream), ("outside_binary", outside_binary)])
EOF

step() {
  local left=$((deadline - SECONDS))
  if [ "$left" -le 0 ]; then
    echo "external_workspace_test: out of time (900 s) before: bazel $*" >&2
    return 1
  fi
  echo "external_workspace_test: bazel $* (in $ws)" >&2
  (cd "$ws" && timeout "$left" bazel "$@")
}

start=$SECONDS
step build //...
step test //...
# The checkout's .bazelignore keeps `@monolake//...` out of its bazel-* convenience symlinks
# (bazel-<directory name> holds the execroot, with a copy of @bazel_tools whose BUILD files do not
# load). Bazel 4.2.3's .bazelignore has no patterns, so it lists the usual directory names only.
link="bazel-$(basename "$checkout")"
if [ ! -L "$checkout/$link" ] || grep -qxF "$link" "$checkout/.bazelignore"; then
  step query --output=package '@monolake//...' >/dev/null
else
  echo "external_workspace_test: skipped bazel query @monolake//...: $link is not in .bazelignore" >&2
fi
echo "external_workspace_test: PASS ($((SECONDS - start)) s, --jobs=$jobs)"
