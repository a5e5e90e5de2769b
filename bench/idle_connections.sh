#!/usr/bin/env bash
# Memory per idle connection: starts the echo example (one backend at a time), opens N idle
# connections that each did one round trip (so a server task is parked in read_some on every
# one), and reports the server's RSS growth per connection.
#   bench/idle_connections.sh [N]      (default 10000; needs an optimised build, see below)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
bazel build --config=opt //examples/echo >/dev/null 2>&1
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)/examples/echo/echo"
ulimit -n "$(ulimit -Hn)"  # client and server are separate processes: n + a few each

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

for backend in io_uring epoll; do
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  MONOLAKE_RUNTIME=$backend "$bin" "127.0.0.1:$port" >/dev/null 2>&1 &
  pid=$!
  sleep 0.5
  before=$(rss_kib $pid)
  fifo=$(mktemp -u); mkfifo "$fifo"
  /usr/bin/python3 - "$port" "$n" "$fifo" <<'PY' &
import socket, sys
port, n, fifo = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    conns.append(s)
open(fifo, "w").write("ready\n")
open(fifo).read()          # hold the connections until told to stop
PY
  client=$!
  read -r _ < "$fifo"
  sleep 0.5
  after=$(rss_kib $pid)
  echo done > "$fifo"
  wait $client
  kill -TERM $pid; wait $pid || true
  rm -f "$fifo"
  awk -v b="$backend" -v n="$n" -v before="$before" -v after="$after" 'BEGIN {
    printf "%-8s %6d idle connections: RSS %d KiB -> %d KiB, %.2f KiB per connection\n",
           b, n, before, after, (after - before) / n }'
done
