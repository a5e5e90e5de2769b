#!/usr/bin/env bash
# Starts the echo example once per backend (MONOLAKE_RUNTIME=io_uring, then epoll) on a free
# loopback port, checks that it echoes and reports the backend it was asked for, and stops it
# by PID.
set -euo pipefail
bin="$1"
pick_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
fail() { echo "FAIL: $*" >&2; exit 1; }

for backend in io_uring epoll; do
  port=$(pick_port)
  log="${TEST_TMPDIR:-/tmp}/echo-$backend.log"
  MONOLAKE_RUNTIME=$backend "$bin" "127.0.0.1:$port" >"$log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 50); do grep -q "using" "$log" && break; sleep 0.1; done
  grep -q "using $backend" "$log" || fail "$backend: banner missing: $(cat "$log")"
  reply=$(/usr/bin/python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
payload = b"monolake-" * 10000
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print("ok" if got == payload else "mismatch %d/%d" % (len(got), len(payload)))
PY
)
  [ "$reply" = "ok" ] || fail "$backend: echo reply: $reply"
  kill -TERM $pid
  wait $pid || fail "$backend: exit status $?"
  trap - EXIT
  echo "$backend: ok"
done
