#!/usr/bin/env bash
# Writes a stand-alone Bazel workspace for a proxy of your own, built on this checkout's public
# framework (//proxy:framework; see docs/framework.md):
#
#   tools/new_proxy.sh DIR NAME
#
# DIR (created; must not exist or be empty) gets a binary //:NAME — monolake plus one request
# filter named NAME that adds the response header `x-NAME: <value>` (`value` is its key in the
# configuration) — with a unit test, an integration test against a real nginx upstream, a
# config.toml that uses the filter, and a README. NAME: a lower-case letter, then lower-case
# letters, digits or _. Then:
#
#   cd DIR && bazel test //... && bazel run //:NAME -- -c config.toml
set -euo pipefail

usage() {
  echo "usage: tools/new_proxy.sh DIR NAME   (NAME: [a-z][a-z0-9_]*)" >&2
  exit 2
}
[ $# -eq 2 ] || usage
dir=$1
name=$2
[[ "$name" =~ ^[a-z][a-z0-9_]*$ ]] || usage
checkout=$(cd "$(dirname "$0")/.." && pwd)
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  echo "tools/new_proxy.sh: $dir exists and is not empty" >&2
  exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# C++ spellings of the name: the filter's class (CamelCase).
class=$(echo "$name" | sed -E 's/(^|_)([a-z0-9])/\U\2/g')Header

cat >"$dir/WORKSPACE" <<EOF
workspace(name = "$name")

# The monolake checkout this proxy builds on (tools/new_proxy.sh wrote its path).
local_repository(
    name = "monolake",
    path = "$checkout",
)

load("@monolake//bazel:repositories.bzl", "monolake_repositories")

monolake_repositories("$checkout")
EOF

cat >"$dir/.bazelrc" <<'EOF'
# Offline builds as monolake's own .bazelrc does them; the disk cache is shared with the checkout.
common --announce_rc=false
build --disk_cache=~/.cache/monolake/bazel-disk
build --spawn_strategy=processwrapper-sandbox,local
build --genrule_strategy=processwrapper-sandbox,local
build:opt -c opt
test --test_output=errors
test --test_summary=short
test --test_verbose_timeout_warnings=false
try-import %workspace%/user.bazelrc
EOF

cat >"$dir/.gitignore" <<'EOF'
/bazel-*
/user.bazelrc
EOF

cat >"$dir/BUILD.bazel" <<EOF
load("@monolake//bazel:defs.bzl", "ml_cc_binary", "ml_cc_library", "ml_cc_test")

# The request filter "$name" (header_filter.h).
ml_cc_library(
    name = "header_filter",
    srcs = ["header_filter.cc"],
    hdrs = ["header_filter.h"],
    deps = ["@monolake//proxy:framework"],
)

ml_cc_test(
    name = "header_filter_test",
    srcs = ["header_filter_test.cc"],
    deps = [
        ":header_filter",
        "@monolake//proxy:framework",
    ],
)

# monolake plus the filter: bazel run //:$name -- -c config.toml
ml_cc_binary(
    name = "$name",
    srcs = ["main.cc"],
    deps = [
        ":header_filter",
        "@monolake//proxy:framework",
    ],
)

# The binary as a process in front of a real nginx, with monolake's test helpers.
sh_test(
    name = "integration_test",
    size = "small",
    srcs = ["@monolake//tests:run_python_test.sh"],
    args = [
        "\$(location integration_test.py)",
        "\$(location :$name)",
    ],
    data = [
        "integration_test.py",
        ":$name",
        "@monolake//tests/lib:proxytest",
    ],
)
EOF

cat >"$dir/header_filter.h" <<EOF
// The request filter "$name": adds the response header \`x-$name: <value>\`.
//
//   [[servers.web.filters]]
//   name = "$name"
//   value = "hello"        # required
//
// A filter is a layer of the server's request stack: it gets each request, hands it to the
// layer inside it (routing, then forwarding) and sees the response on its way out. Its factory
// builds one per worker at each load and reload, from that worker's previous one
// (make_via_ref): state kept there — here a count of responses — survives reloads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "proxy/framework/framework.h"

namespace $name {

namespace mh = monolake::http;

class $class final : public monolake::proxy::Layer<mh::Request, mh::Response> {
 public:
  $class(std::string value, std::shared_ptr<uint64_t> responses, std::shared_ptr<Inner> inner)
      : Layer(std::move(inner)), value_(std::move(value)), responses_(std::move(responses)) {}
  monolake::runtime::Task<monolake::Result<mh::Response>> call(mh::Request request) override;
  // Responses this worker's filter has stamped, since the process started.
  const std::shared_ptr<uint64_t>& responses() const { return responses_; }

 private:
  std::string value_;
  std::shared_ptr<uint64_t> responses_;
};

class ${class}Factory final : public monolake::proxy::FactoryLayer<$class> {
 public:
  explicit ${class}Factory(std::string value) : value_(std::move(value)) {}
  monolake::Result<std::shared_ptr<$class>> make_via_ref(
      const $class* previous, std::shared_ptr<Inner> inner,
      const monolake::proxy::Build& build) const override;

 private:
  std::string value_;
};

// What main() registers: the filter's keys and its maker.
monolake::proxy::ParamSchema schema();
monolake::Result<std::shared_ptr<const monolake::proxy::framework::HttpLayerFactory>> make(
    const monolake::proxy::framework::FilterParams& params);

}  // namespace $name
EOF

cat >"$dir/header_filter.cc" <<EOF
#include "header_filter.h"

namespace $name {

monolake::runtime::Task<monolake::Result<mh::Response>> $class::call(mh::Request request) {
  monolake::Result<mh::Response> response = co_await inner_->call(std::move(request));
  if (response) {
    ++*responses_;
    response->head.headers.set("x-$name", value_);
  }
  co_return response;
}

monolake::Result<std::shared_ptr<$class>> ${class}Factory::make_via_ref(
    const $class* previous, std::shared_ptr<Inner> inner, const monolake::proxy::Build&) const {
  auto responses = previous ? previous->responses() : std::make_shared<uint64_t>(0);
  return std::make_shared<$class>(value_, std::move(responses), std::move(inner));
}

monolake::proxy::ParamSchema schema() {
  monolake::proxy::ParamSchema schema;
  schema.string("value").required().doc("the value of the x-$name response header");
  return schema;
}

monolake::Result<std::shared_ptr<const monolake::proxy::framework::HttpLayerFactory>> make(
    const monolake::proxy::framework::FilterParams& params) {
  const std::string& value = params.params.string("value");
  if (value.find_first_of("\\r\\n") != std::string::npos) {
    return monolake::Error(monolake::ErrorCode::kInvalidArgument,
                           "value: a header value has no line breaks");
  }
  return std::make_shared<${class}Factory>(value);
}

}  // namespace $name
EOF

cat >"$dir/main.cc" <<EOF
// $name: monolake plus the request filter "$name". The command line, configuration, reload
// (SIGHUP, POST /reload), binary upgrade, admin API and metrics are the framework's.
#include <cstdio>
#include <memory>

#include "header_filter.h"

int main(int argc, char** argv) {
  namespace framework = monolake::proxy::framework;
  auto registry = std::make_shared<framework::Registry>();
  // Registered here, explicitly: the linker may drop static initializers of a library.
  if (auto added = registry->add_http_filter("$name", $name::schema(), $name::make); !added) {
    std::fprintf(stderr, "$name: %s\\n", added.error().message().c_str());
    return 1;
  }
  framework::AppInfo info;
  info.name = "$name";
  info.version = "0.1.0";
  return framework::run(argc, argv, registry, std::move(info));
}
EOF

cat >"$dir/header_filter_test.cc" <<EOF
#include "header_filter.h"

#include <gtest/gtest.h>

#include "runtime/runtime.h"

namespace $name {
namespace {

// What the filter wraps: a service that answers 200.
class Answer final : public monolake::proxy::Service<mh::Request, mh::Response> {
 public:
  monolake::runtime::Task<monolake::Result<mh::Response>> call(mh::Request) override {
    co_return mh::text_response(200, "ok");
  }
};

std::shared_ptr<monolake::proxy::framework::HttpLayerFactory::ServiceType> build(
    const monolake::proxy::Generation* previous, monolake::proxy::Generation& next) {
  monolake::proxy::Params params;
  params.set("value", std::string("hello"));
  const std::string server = "web", route;
  auto factory = make(monolake::proxy::framework::FilterParams{params, server, route});
  EXPECT_TRUE(factory) << factory.error().to_string();
  auto chain = (*factory)->make(std::make_shared<Answer>(),
                                monolake::proxy::Build(previous, next, "servers.web/filter"));
  EXPECT_TRUE(chain) << chain.error().to_string();
  return *chain;
}

TEST(${class}Test, AddsTheHeaderAndCountsOverRebuilds) {
  auto rt = std::move(*monolake::runtime::Runtime::create({}));
  monolake::proxy::Generation first, second;
  auto chain = build(nullptr, first);
  mh::Request request;
  request.head.method = "GET";
  request.head.target = "/";
  auto response = rt->block_on(chain->call(std::move(request)));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->head.headers.get("x-$name").value_or(""), "hello");
  // A reload builds from the previous generation: the count carries on.
  auto rebuilt = build(&first, second);
  auto kept = second.find<$class>("servers.web/filter");
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(*kept->responses(), 1u);
}

TEST(${class}Test, RefusesALineBreakInTheValue) {
  monolake::proxy::Params params;
  params.set("value", std::string("a\\r\\nb"));
  const std::string server = "web", route;
  auto made = make(monolake::proxy::framework::FilterParams{params, server, route});
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().message(), "value: a header value has no line breaks");
}

}  // namespace
}  // namespace $name
EOF

cat >"$dir/integration_test.py" <<EOF
"""//:$name as a process in front of a real nginx, driven by curl: the filter's header is on
every proxied response, a reload changes it, and a bad filter table is refused at reload with
FILE: KEY.PATH: reason while the running configuration stays.

Uses monolake's test helpers (@monolake//tests/lib:proxytest): processes on loopback ports,
each stopped by PID at the end.
"""

import os
import subprocess
import sys

import proxytest as pt

BINARY = os.path.abspath(sys.argv[1])
DIR = pt.tmpdir()


def config(port, upstream, value):
    return """[runtime]
worker_threads = 1
[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
[[servers.web.filters]]
name = "$name"
value = "%s"
[[servers.web.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (port, value, upstream)


def header(port):
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-", "-o", "/dev/null",
                          "http://127.0.0.1:%d/x" % port], capture_output=True, timeout=20)
    for line in out.stdout.decode(errors="replace").split("\\r\\n"):
        if line.lower().startswith("x-$name:"):
            return line.split(":", 1)[1].strip()
    return None


def test_header_over_reloads():
    nport, port = pt.free_ports(2)
    nginx = pt.nginx(DIR, ['server { listen 127.0.0.1:%d; location / { return 200 "up\\\\n"; } }'
                           % nport])
    pt.wait_until(lambda: pt.port_open(nport), 10, "nginx")
    proxy = pt.Monolake(BINARY, config(port, nport, "one"), DIR, name="$name")
    proxy.wait_ready()
    assert header(port) == "one"
    assert proxy.reload(config(port, nport, "two")) is True, proxy.err()
    assert header(port) == "two"
    assert proxy.reload(config(port, nport, "two").replace('value = "two"', "")) is False
    assert "servers.web.filters[0].value: missing (required)" in proxy.err(), proxy.err()
    assert header(port) == "two"
    assert proxy.stop() == 0
    nginx.stop()


if __name__ == "__main__":
    pt.main([("x-$name over reloads", test_header_over_reloads)])
EOF

cat >"$dir/config.toml" <<EOF
# $name in front of an HTTP upstream on 127.0.0.1:9000 (start one, e.g. python3 -m http.server
# 9000), listening on 127.0.0.1:8080:
#   bazel run //:$name -- -c config.toml
#   curl -i http://127.0.0.1:8080/        -> the upstream's answer with x-$name: hello
# Every key: monolake's docs/config.md; the filter's: header_filter.h.
[runtime]
worker_threads = 1

[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:8080" }

[[servers.web.filters]]
name = "$name"
value = "hello"

[[servers.web.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
EOF

cat >"$dir/README.md" <<EOF
# $name

A proxy built on [monolake]($checkout)'s framework (its docs/framework.md): the monolake binary
plus one request filter of its own, \`$name\`, which adds the response header
\`x-$name: <value>\`. Written by \`tools/new_proxy.sh\`; change it freely.

| file | what it is |
|---|---|
| \`header_filter.{h,cc}\` | the filter: its layer, its factory (built from its previous generation on reload), its parameter schema |
| \`main.cc\` | registers the filter and hands over to \`framework::run()\` |
| \`config.toml\` | a configuration using the filter |
| \`header_filter_test.cc\` | unit test |
| \`integration_test.py\` | the binary before a real nginx, with monolake's test helpers |

    bazel test //...                        # unit and integration tests (needs nginx, curl)
    bazel run //:$name -- -c config.toml    # serve (a relative -c is where you typed it)
    bazel build -c opt //:$name             # bazel-bin/$name for deployment

Everything besides the filter — the command line (\`-c\`, \`--check\`, \`--upgrade\`), reload on
SIGHUP and \`POST /reload\`, binary upgrade, drain, the admin API, metrics and the access log —
is monolake's and documented in its docs/operations.md and docs/config.md. The filter's keys
are checked when the file is loaded: \`value\` missing, or a key it does not have, is an error
naming the file and key path, and a reload with such an error leaves the running configuration
in force.

This workspace points at the monolake checkout in WORKSPACE (\`local_repository\`); move it with
\`path = ...\` there.
EOF
echo "wrote $dir: cd $dir && bazel test //... && bazel run //:$name -- -c config.toml"
