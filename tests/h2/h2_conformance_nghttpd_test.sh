#!/usr/bin/env bash
# Exercises h2_conformance.py against nghttpd (Debian nghttp2-server, libnghttp2 1.52, the
# library the proxy's HTTP/2 uses): h2c with prior knowledge with every case nghttpd passes
# (floods included, with its RSS watched), then TLS + ALPN h2 without the floods. The cases
# left out are nghttp2 deviations documented in README.md.
# Usage: h2_conformance_nghttpd_test.sh H2_CONFORMANCE.PY MAKE_TEST_CERTS
set -euo pipefail
script=$(realpath "$1")
make_certs=$(realpath "$2")
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/h2conf.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

pick_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 100); do
    /usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "FAIL: nothing listens on port $1" >&2
  return 1
}

mkdir -p "$tmp/www"
echo '<html>h2 conformance</html>' > "$tmp/www/index.html"
"$make_certs" "$tmp/certs"

# nghttp2 deviations (README.md): lower stream id is ignored, not PROTOCOL_ERROR (by design);
# a window overrun is only caught when nghttpd reads it faster than it sends WINDOW_UPDATE
# (timing); empty DATA and PRIORITY floods are processed cheaply, never cut.
known=(--skip '^5\.1\.1/2 ' --skip '^6\.9\.1/3 ' --skip '^10\.5/3 ' --skip '^10\.5/4 ')

port=$(pick_port)
nghttpd --no-tls -d "$tmp/www" "$port" >"$tmp/nghttpd.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_port "$port"
/usr/bin/python3 -u "$script" --host 127.0.0.1 --port "$port" --pid "$pid" "${known[@]}"

tls_port=$(pick_port)
nghttpd -d "$tmp/www" "$tls_port" "$tmp/certs/ip.key" "$tmp/certs/ip.pem" >"$tmp/nghttpd-tls.log" 2>&1 &
pids+=("$!")
wait_port "$tls_port"
/usr/bin/python3 -u "$script" --host 127.0.0.1 --port "$tls_port" --tls --skip-floods "${known[@]}"

# The script must fail when a case fails: 5.1.1/2 is one nghttpd never passes.
if /usr/bin/python3 "$script" --port "$port" --only '^5\.1\.1/2 ' >"$tmp/neg.out" 2>&1; then
  echo "FAIL: the script exited 0 although a case failed:" >&2
  cat "$tmp/neg.out" >&2
  exit 1
fi
grep -q '^FAIL 5\.1\.1/2 ' "$tmp/neg.out"
grep -q '^0 passed, 1 failed' "$tmp/neg.out"
echo "h2_conformance against nghttpd: ok"
