#!/usr/bin/env bash
# The gRPC test peers against each other, with no proxy in between, so a failure in a proxy
# test can be blamed on the proxy:
#   - echo_client --mode all (unary, server streaming, bidi, errors with trailers, deadline)
#     against echo_server with default, empty and 1 MiB payloads, many messages, --authority;
#   - the client must FAIL against a closed port (quickly), and against `echo_server
#     --corrupt 1` in every mode (a flipped payload byte, a missing trailer);
#   - usage errors exit 2; the server exits 0 on SIGTERM.
# Every process started is stopped by its PID.
# Usage: grpc_peers_test.sh ECHO_SERVER ECHO_CLIENT
set -euo pipefail
server_bin=$(realpath "$1")
client_bin=$(realpath "$2")

tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/grpc-peers.XXXXXX")

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

failures=0
checks=0
fail() {
  echo "FAIL $*" >&2
  failures=$((failures + 1))
}
pass() {
  echo "ok   $*"
  checks=$((checks + 1))
}

server_pid=
server_log=
port=
# start_server NAME ARGS...: starts echo_server on a free port and waits (bounded) for
# "listening PORT".
start_server() {
  server_log=$tmp/$1.log
  shift
  : >"$server_log" # exists before the loop below reads it
  "$server_bin" --port 0 "$@" >"$server_log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening \([0-9][0-9]*\)$/\1/p' "$server_log")
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL echo_server did not start: $(cat "$server_log")" >&2
  exit 1
}

stop_server() {
  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  if [ "$rc" -eq 0 ]; then pass "echo_server exits 0 on SIGTERM"; else
    fail "echo_server exited with status $rc on SIGTERM: $(cat "$server_log")"
  fi
}

# client_ok WHAT ARGS...: echo_client must exit 0 and say all checks passed.
client_ok() {
  local what=$1 rc=0 out
  shift
  out=$(timeout 60 "$client_bin" --target "127.0.0.1:$port" "$@" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ] && grep -q '^echo_client: all [0-9]* checks passed$' <<<"$out" &&
    ! grep -q '^FAIL' <<<"$out"; then
    pass "$what: $(tail -1 <<<"$out")"
  else
    fail "$what: exit status $rc:"$'\n'"$(sed 's/^/    | /' <<<"$out" | head -80)"
  fi
}

# client_fails WHAT PATTERN ARGS...: echo_client must exit 1 within 30 s, print a FAIL line,
# and its output must match PATTERN (grep -E).
client_fails() {
  local what=$1 pattern=$2 rc=0 out start
  shift 2
  start=$(date +%s)
  out=$(timeout 60 "$client_bin" "$@" 2>&1) || rc=$?
  local took=$(($(date +%s) - start))
  if [ "$rc" -eq 1 ] && grep -q '^FAIL' <<<"$out" && grep -Eq -- "$pattern" <<<"$out" &&
    [ "$took" -lt 30 ]; then
    pass "$what: exit 1 in ${took}s, $(grep -m1 '^FAIL' <<<"$out")"
  else
    fail "$what: expected exit 1 with a FAIL line matching '$pattern' within 30 s;" \
      "got exit status $rc after ${took}s:"$'\n'"$(sed 's/^/    | /' <<<"$out" | head -40)"
  fi
}

# --- a correct server ------------------------------------------------------------------------
start_server good
client_ok "all modes, defaults" --mode all
client_ok "all modes, empty payloads" --mode all --count 3 --size 0
client_ok "all modes, 1 MiB payloads (beyond the flow-control windows)" \
  --mode all --count 4 --size 1048576
client_ok "server_stream, 500 replies" --mode server_stream --count 500 --size 100
client_ok "bidi, 300 round trips" --mode bidi --count 300 --size 10
client_ok "unary with --authority" --mode unary --count 2 --authority example.test:8443
closed_port=$port
stop_server

# --- the client notices failures -------------------------------------------------------------
# The port of the stopped server is closed now.
client_fails "closed port" 'UNAVAILABLE' --target "127.0.0.1:$closed_port" --mode all \
  --timeout-ms 5000
start_server corrupt --corrupt 1
client_fails "corrupted unary payload" 'FAIL unary\[0\] payload .*first difference at offset 1023' \
  --target "127.0.0.1:$port" --mode unary --count 1
client_fails "corrupted server_stream payload" 'FAIL server_stream .* intact and in order' \
  --target "127.0.0.1:$port" --mode server_stream
client_fails "corrupted bidi payload" 'FAIL bidi .* intact and in order' \
  --target "127.0.0.1:$port" --mode bidi
client_fails "missing x-trailer" 'FAIL error unary trailer x-trailer: value-unary: got <absent>' \
  --target "127.0.0.1:$port" --mode error
stop_server

# Usage errors: exit status 2 and a message, nothing sent.
for args in "--mode all" "--target 127.0.0.1:1 --mode bogus" "--target 127.0.0.1:1 --size x" \
  "--target 127.0.0.1:1 --bogus 1"; do
  rc=0
  # shellcheck disable=SC2086
  out=$("$client_bin" $args 2>&1) || rc=$?
  if [ "$rc" -eq 2 ] && grep -q '^error: ' <<<"$out"; then pass "usage error exits 2: $args"; else
    fail "echo_client $args: expected exit 2 and 'error: ...', got $rc: $out"
  fi
done
rc=0
out=$("$server_bin" 2>&1) || rc=$?
if [ "$rc" -eq 2 ]; then pass "echo_server without --port exits 2"; else
  fail "echo_server without --port: expected exit 2, got $rc: $out"
fi

echo "$checks check(s) passed, $failures failed"
[ "$failures" -eq 0 ]
