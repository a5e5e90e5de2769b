#!/bin/bash
# User-space instructions per proxied HTTP/1.1 request, under callgrind: monolake (one worker,
# access log off) in front of an nginx upstream answering every GET with a 1 KiB body; one
# keep-alive client connection sends N1, then (a fresh proxy) N2 requests; the difference in
# the proxy's instructions divided by N2 - N1, so start-up, connection set-up and exit cancel
# out. The epoll backend: valgrind does not follow io_uring. Deterministic where the e2e benchmarks are not (a shared VM's speed drifts), so it is the
# check that a change did not add work to the request path. It counts instructions, not time:
# system calls and cache misses are not in it.
#
#   MONOLAKE=bazel-bin/proxy/monolake bench/proxy_instructions.sh   # N1=500 N2=2500 by default
set -euo pipefail
shopt -s inherit_errexit
bin=$(realpath "${MONOLAKE:-bazel-bin/proxy/monolake}")
n1=${N1:-500}
n2=${N2:-2500}
tmp=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

up_port=$(free_port)
mkdir -p "$tmp/upstream"
cat >"$tmp/upstream/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $tmp/upstream/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$up_port;
    location / { return 200 "$(head -c 1024 /dev/zero | tr '\0' 'x')"; }
  }
}
CONF
nginx -p "$tmp/upstream" -e "$tmp/upstream/error.log" -c "$tmp/upstream/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $up_port), 0.2)" 2>/dev/null &&
    break
  sleep 0.1
done

# count N: the proxy's instructions for N requests on one keep-alive connection.
count() {
  local port
  port=$(free_port)
  cat >"$tmp/proxy.toml" <<CONF
[runtime]
worker_threads = 1
[log]
access_log = "off"
[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$port" }
[[servers.bench.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:$up_port" } }]
CONF
  MONOLAKE_RUNTIME=epoll valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" \
    "$bin" -c "$tmp/proxy.toml" --log-level warn >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
  local pid=$!
  pids+=("$pid")
  python3 - "$port" "$1" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):  # valgrind starts slowly: up to 60 s
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("proxy did not start")
request = b"GET /x HTTP/1.1\r\nHost: bench\r\nUser-Agent: proxy_instructions\r\nAccept: */*\r\n\r\n"
for _ in range(n):
    s.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit("unexpected answer: %r" % head[:80])
    while len(body) < 1024:
        body += s.recv(65536)
s.close()
PY
  kill -TERM "$pid"
  wait "$pid" || true
  grep -o 'Collected : [0-9]*' "$tmp/proxy.err" | grep -o '[0-9]*$'
}
a=$(count "$n1")
b=$(count "$n2")
echo "monolake $(basename "$bin"): $(((b - a) / (n2 - n1))) instructions per proxied request ($n1 and $n2 requests: $a, $b)"
