#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent: packages already
# present are skipped, so a second run takes a second or two.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap g++ clang-14 libclang-rt-14-dev clang-format-14 default-jdk-headless
  # libraries wrapped in third_party/
  liburing-dev node-llhttp libnghttp2-dev libssl-dev libgnutls28-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libtomlplusplus-dev libcli11-dev
  libspdlog-dev libfmt-dev libc-ares-dev zlib1g-dev libbrotli-dev libzstd-dev
  # tools used by tests and benchmarks
  curl netcat-openbsd procps iproute2 openssl gnutls-bin testssl.sh nginx-light haproxy wrk
  brotli zstd socat python3 apache2-utils python3-websockets slowhttptest python3-thrift thrift-compiler
  # libthrift-dev 0.17 headers include Boost but the package does not depend on it
  libthrift-dev libboost-dev nghttp2-client nghttp2-server h2o python3-h2 python3-hyperframe python3-hpack
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # examples/custom_protocol's peers
  redis-server redis-tools
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "setup: installing ${#missing[@]} package(s): ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Keep packaged daemons (nginx, haproxy...) from starting as system services while installing.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && $SUDO rm -f "$policy"' EXIT

$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2
