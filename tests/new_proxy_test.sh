#!/usr/bin/env bash
# tools/new_proxy.sh as a user runs it, so the public framework API cannot break silently: writes
# a proxy workspace into a temporary directory, runs `bazel test //...` there (its unit test and
# its integration test against nginx), then `bazel run //:NAME -- -c config.toml` from that
# directory (a relative -c is resolved where the command was typed) and checks with curl that it
# serves and stamps its header, and stops it by PID.
#
#   tests/new_proxy_test.sh        BAZEL_JOBS=1 for --jobs=1 (default 2)
#
# Not a Bazel test (Bazel inside a Bazel sandbox is fragile): tools/test.sh runs it as a step.
# The workspace and its output base live in a temporary directory, removed at exit after
# `bazel shutdown`; objects come from the shared disk cache. Bounded: 900 s for the tests, 120 s
# for the run.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/.." && pwd)
jobs=${BAZEL_JOBS:-2}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ml-new-proxy.XXXXXX")
ws="$tmp/edge"
pid=""
upstream=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  [ -n "$upstream" ] && kill "$upstream" 2>/dev/null || true
  if [ -d "$ws" ]; then (cd "$ws" && timeout 60 bazel shutdown >/dev/null 2>&1) || true; fi
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "new_proxy_test: $*" >&2
  exit 1
}

"$checkout/tools/new_proxy.sh" "$ws" edge_tag
# Refuses a bad name and a non-empty directory.
if "$checkout/tools/new_proxy.sh" "$tmp/bad" Bad-Name 2>/dev/null; then fail "accepted Bad-Name"; fi
if "$checkout/tools/new_proxy.sh" "$ws" edge_tag 2>/dev/null; then fail "overwrote $ws"; fi

cd "$ws"
# Its own output base, inside the temporary directory.
{ echo "startup --output_base=$tmp/output_base"; echo "build --jobs=$jobs"; } >user.bazelrc
timeout 900 bazel test //... || fail "bazel test //... failed in the generated workspace"

# Serve with bazel run, as the generated README says, in front of a real nginx.
read -r nport port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<CONF
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server { listen 127.0.0.1:$nport; location / { return 200 "upstream\n"; } }
}
CONF
/usr/sbin/nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -e "$tmp/nginx/error.log" &
upstream=$!
sed -i "s/127.0.0.1:8080/127.0.0.1:$port/; s/127.0.0.1:9000/127.0.0.1:$nport/g" config.toml
# `bazel run` execs the binary in its own process, so $! is the proxy's PID once it serves.
timeout 120 bazel run //:edge_tag -- -c config.toml >"$tmp/run.out" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do
  grep -q "^listening:" "$tmp/run.out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || fail "bazel run ended: $(tail -5 "$tmp/run.out")"
  sleep 0.1
done
grep -q "^listening:" "$tmp/run.out" || fail "no banner: $(tail -5 "$tmp/run.out")"
for _ in $(seq 1 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $nport), 0.2)" 2>/dev/null &&
    break
  sleep 0.1
done
answer=$(curl -sS --max-time 10 -i "http://127.0.0.1:$port/")
echo "$answer" | grep -q "^HTTP/1.1 200" || fail "not 200: $answer"
echo "$answer" | grep -qi "^x-edge_tag: hello" || fail "no x-edge_tag header: $answer"
echo "$answer" | grep -q "^upstream" || fail "not the upstream's body: $answer"
kill -TERM "$pid"
wait "$pid" || true
pid=""
echo "new_proxy_test: generated workspace tested and served"
