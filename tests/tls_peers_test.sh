#!/usr/bin/env bash
# Interoperability of both TLS backends with other TLS stacks, on loopback:
#   - `openssl s_client` and `gnutls-cli` as clients of tls_echo_server: SNI picks the
#     certificate (exact, wildcard, default); ALPN by server preference; session resumption
#     (TLS 1.3 and 1.2, again from the ticket a resumed connection issued, and across a restart
#     with --ticket-keys-file); TLS 1.0/1.1 refused by our server; a TLS 1.3 ClientHello without
#     RFC 5746 signalling accepted; --min-version 1.3; required client certificates;
#   - `openssl s_server` as the server of tls_client: success with the right CA and name (DNS
#     and IP), ALPN, resumption; verification failures with a wrong CA, a wrong name or IP and
#     an expired certificate.
# Certificates are made at test time. Every process started is stopped by its PID.
# Usage: tls_peers_test.sh TLS_ECHO_SERVER TLS_CLIENT MAKE_TEST_CERTS [BACKEND...]
set -euo pipefail
server_bin=$(realpath "$1")
client_bin=$(realpath "$2")
make_certs=$3
shift 3
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(openssl gnutls)

tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/tls-peers.XXXXXX")
certs=$tmp/certs
bash "$make_certs" "$certs" >/dev/null
# No distribution configuration (minimum versions, security levels) in the peers' way: each
# command below states what it wants.
export OPENSSL_CONF=/dev/null

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

backend=setup
failures=0
checks=0
fail() {
  echo "FAIL [$backend] $*" >&2
  failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }

pick_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- tls_echo_server --------------------------------------------------------------------------

server_pid=
server_log=
port=
# start_server NAME ARGS...: starts tls_echo_server and waits (bounded) for "listening on".
start_server() {
  server_log=$tmp/$backend-$1.log
  shift
  # Made here, not by the background job's redirection, which may run after the first sed.
  : >"$server_log"
  "$server_bin" --backend "$backend" --listen 127.0.0.1:0 "$@" >>"$server_log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$server_log")
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL [$backend] tls_echo_server did not start: $(cat "$server_log")" >&2
  exit 1
}

stop_server() {
  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "tls_echo_server exited with status $rc on SIGTERM"
}

# The server prints one line per handshake; a check looks only at lines printed after mark.
mark=0
mark_log() { mark=$(wc -l <"$server_log"); }
log_since_mark() { tail -n +"$((mark + 1))" "$server_log"; }
# expect_server WHAT PATTERN: waits (bounded) for PATTERN (grep -E) among the new lines.
expect_server() {
  for _ in $(seq 50); do
    if log_since_mark | grep -Eq -- "$2"; then
      pass
      return 0
    fi
    sleep 0.1
  done
  fail "$1: server printed no line matching '$2'; it printed: $(log_since_mark | tr '\n' '|')"
}

# expect_output WHAT OUTPUT PATTERN: PATTERN (grep -E) is in the client's OUTPUT.
expect_output() {
  if grep -Eq -- "$3" <<<"$2"; then
    pass
  else
    fail "$1: no '$3' in the client's output:"$'\n'"$(sed 's/^/    | /' <<<"$2" | head -40)"
  fi
}
reject_output() {
  if grep -Eq -- "$3" <<<"$2"; then
    fail "$1: unexpected '$3' in the client's output:"$'\n'"$(sed 's/^/    | /' <<<"$2" | head -40)"
  else
    pass
  fi
}

# s_client ARGS...: one connection that sends "ping-monolake" and stays half a second for the
# echo and for TLS 1.3 session tickets, then ends by closing stdin. Its output goes to $out;
# its exit status does not matter (callers check the output and the server's lines).
out=
s_client() {
  mark_log
  out=$( (
    printf 'ping-monolake\n'
    sleep 0.5
  ) | timeout 10 openssl s_client -connect "127.0.0.1:$port" "$@" 2>&1) || true
}

# gnutls_cli ARGS...: the same with gnutls-cli (which verifies by default).
gnutls_cli() {
  mark_log
  out=$( (
    printf 'ping-monolake\n'
    sleep 0.5
  ) | timeout 10 gnutls-cli --port "$port" --x509cafile "$certs/ca.pem" "$@" 127.0.0.1 2>&1) ||
    true
}

# raw_tls13_hello: sends the ClientHello of a client whose minimum is TLS 1.3 (BoringSSL's
# shape: no RFC 5746 renegotiation_info extension nor SCSV, which TLS 1.3 does not need), with
# X25519 and P-256 key shares, and prints what the server answers: ServerHello,
# HelloRetryRequest or "alert N".
raw_tls13_hello() {
  mark_log
  out=$(raw_tls13_hello_py "$port" 2>&1) || true
}
raw_tls13_hello_py() {
  /usr/bin/python3 - "$1" <<'PY'
import os, socket, struct, sys

def ext(kind, body):
    return struct.pack("!HH", kind, len(body)) + body

def vec16(items):
    data = b"".join(struct.pack("!H", i) for i in items)
    return struct.pack("!H", len(data)) + data

# The P-256 generator: a valid public point. Any 32 bytes are an X25519 public key.
p256 = bytes.fromhex(
    "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
shares = struct.pack("!HH", 0x001D, 32) + os.urandom(32) + struct.pack("!HH", 0x0017, 65) + p256
name = b"b.test"
exts = (ext(0x0000, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
        + ext(0x000A, vec16([0x001D, 0x0017]))
        + ext(0x000D, vec16([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]))
        + ext(0x002B, b"\x02\x03\x04")
        + ext(0x002D, b"\x01\x01")
        + ext(0x0033, struct.pack("!H", len(shares)) + shares))
body = (b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32) + vec16([0x1301, 0x1302, 0x1303])
        + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
hello_retry = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    s.sendall(b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake)
    reply = b""
    while len(reply) < 43:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
if reply[:1] == b"\x15" and len(reply) >= 7:
    print("alert %d" % reply[6])
elif reply[:1] == b"\x16" and len(reply) >= 43 and reply[5] == 2:
    print("HelloRetryRequest" if reply[11:43] == hello_retry else "ServerHello")
else:
    print("unexpected reply %r" % reply[:16])
PY
}

test_clients_of_our_server() {
  local sess=$tmp/$backend-sess
  start_server main --cert "$certs/a.pem,$certs/a.key,a.test;*.a.test" \
    --cert "$certs/b.pem,$certs/b.key,b.test" --alpn h2,http/1.1

  # SNI picks the certificate; the chain verifies against the CA; the data is echoed.
  s_client -servername b.test -verify_return_error -CAfile "$certs/ca.pem" \
    -verify_hostname b.test
  expect_output "s_client SNI b.test" "$out" '^Verification: OK'
  expect_output "s_client SNI b.test" "$out" '^subject=CN ?= ?b\.test$'
  expect_output "s_client SNI b.test: echo" "$out" 'ping-monolake'
  expect_server "s_client SNI b.test" 'handshake ok .*sni=b\.test'
  s_client -servername www.a.test -verify_return_error -CAfile "$certs/ca.pem" \
    -verify_hostname www.a.test
  expect_output "s_client SNI www.a.test (wildcard)" "$out" '^Verification: OK'
  expect_output "s_client SNI www.a.test (wildcard)" "$out" '^subject=CN ?= ?"?a\.test'
  s_client -servername c.test -CAfile "$certs/ca.pem"
  expect_output "s_client unknown SNI: default certificate" "$out" '^subject=CN ?= ?"?a\.test'
  s_client -noservername -CAfile "$certs/ca.pem"
  expect_output "s_client without SNI: default certificate" "$out" '^subject=CN ?= ?"?a\.test'
  gnutls_cli --sni-hostname b.test --verify-hostname b.test
  expect_output "gnutls-cli SNI b.test" "$out" 'Status: The certificate is trusted'
  expect_output "gnutls-cli SNI b.test" "$out" "subject \`CN=b\\.test'"
  expect_output "gnutls-cli SNI b.test: echo" "$out" 'ping-monolake'
  expect_server "gnutls-cli SNI b.test" 'handshake ok .*sni=b\.test'

  # ALPN: the server's preference among what the client offers; none in common: no ALPN.
  s_client -servername b.test -alpn h2
  expect_output "s_client ALPN h2" "$out" '^ALPN protocol: h2$'
  expect_server "s_client ALPN h2" 'handshake ok alpn=h2 '
  s_client -servername b.test -alpn http/1.1
  expect_output "s_client ALPN http/1.1" "$out" '^ALPN protocol: http/1\.1$'
  expect_server "s_client ALPN http/1.1" 'handshake ok alpn=http/1\.1 '
  s_client -servername b.test -alpn http/1.1,h2
  expect_output "s_client ALPN http/1.1,h2 (server preference)" "$out" '^ALPN protocol: h2$'
  s_client -servername b.test -alpn foo
  expect_output "s_client ALPN foo (none in common)" "$out" '^No ALPN negotiated'
  expect_server "s_client ALPN foo (none in common)" 'handshake ok alpn=- '
  s_client -servername b.test
  expect_output "s_client without ALPN" "$out" '^No ALPN negotiated'
  gnutls_cli --sni-hostname b.test --verify-hostname b.test --alpn=h2
  expect_output "gnutls-cli ALPN h2" "$out" 'Application protocol: h2$'
  gnutls_cli --sni-hostname b.test --verify-hostname b.test --alpn=http/1.1
  expect_output "gnutls-cli ALPN http/1.1" "$out" 'Application protocol: http/1\.1$'

  # Resumption with session tickets, TLS 1.3 and 1.2. TLS 1.3: then once more from the ticket
  # the resumed connection issued (a client uses a TLS 1.3 ticket once: RFC 8446 C.4, so a
  # server that issues none on resumption makes every other connection a full handshake).
  # TLS 1.2: once more from the same ticket (s_client saves no session when none is issued).
  local version
  for version in tls1_3 tls1_2; do
    rm -f "$sess"-*
    s_client "-$version" -servername b.test -CAfile "$certs/ca.pem" -sess_out "$sess-1"
    expect_output "s_client $version first connection" "$out" '^New, TLSv1\.[23]'
    [ -s "$sess-1" ] || fail "s_client $version: no session saved (no ticket received)"
    s_client "-$version" -servername b.test -CAfile "$certs/ca.pem" -sess_in "$sess-1" \
      -sess_out "$sess-2"
    expect_output "s_client $version resumption" "$out" '^Reused, TLSv1\.[23]'
    expect_server "s_client $version resumption" 'handshake ok .*resumed=1'
    if [ "$version" = tls1_2 ]; then
      s_client "-$version" -servername b.test -CAfile "$certs/ca.pem" -sess_in "$sess-1"
      expect_output "s_client $version second resumption (same ticket)" "$out" \
        '^Reused, TLSv1\.2'
    elif [ -s "$sess-2" ]; then
      s_client "-$version" -servername b.test -CAfile "$certs/ca.pem" -sess_in "$sess-2"
      expect_output "s_client $version second resumption (ticket from a resumed connection)" \
        "$out" '^Reused, TLSv1\.3'
    else
      fail "s_client $version: the resumed connection issued no new session ticket"
    fi
  done
  gnutls_cli --sni-hostname b.test --verify-hostname b.test --resume
  expect_output "gnutls-cli TLS 1.3 resumption" "$out" 'This is a resumed session'
  expect_server "gnutls-cli TLS 1.3 resumption" 'handshake ok .*resumed=1 version=TLSv1\.3'
  gnutls_cli --sni-hostname b.test --verify-hostname b.test --resume \
    --priority NORMAL:-VERS-TLS1.3
  expect_output "gnutls-cli TLS 1.2 resumption" "$out" 'This is a resumed session'
  expect_server "gnutls-cli TLS 1.2 resumption" 'handshake ok .*resumed=1 version=TLSv1\.2'

  # A TLS 1.3-only client need not signal RFC 5746 (renegotiation does not exist in TLS 1.3).
  raw_tls13_hello
  expect_output "TLS 1.3 ClientHello without renegotiation_info/SCSV accepted" "$out" \
    '^ServerHello$'

  # A client-initiated TLS 1.2 renegotiation (s_client's "R" command) is refused, and the
  # connection is not renegotiated.
  mark_log
  out=$( (
    printf 'ping-monolake\n'
    sleep 0.5
    printf 'R\n'
    sleep 1
  ) | timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_2 -servername b.test \
    -CAfile "$certs/ca.pem" 2>&1) || true
  expect_output "s_client renegotiation attempted" "$out" '^RENEGOTIATING'
  expect_output "s_client renegotiation refused" "$out" 'no renegotiation'

  # TLS 1.1 and 1.0 are refused by our server (the clients are allowed to offer them).
  for version in tls1_1 tls1; do
    s_client "-$version" -cipher 'DEFAULT:@SECLEVEL=0' -servername b.test
    expect_output "s_client -$version refused" "$out" 'Cipher is \(NONE\)'
    expect_server "s_client -$version refused" '^handshake failed: '
  done
  gnutls_cli --sni-hostname b.test --verify-hostname b.test \
    --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0'
  reject_output "gnutls-cli TLS 1.1 refused" "$out" 'Handshake was completed'
  expect_server "gnutls-cli TLS 1.1 refused" '^handshake failed: '
  stop_server

  # Ticket keys kept in --ticket-keys-file: a session from before a restart resumes after it.
  local keys=$tmp/$backend-ticket-keys
  rm -f "$keys" "$sess"-*
  start_server keys1 --cert "$certs/b.pem,$certs/b.key,b.test" --ticket-keys-file "$keys"
  s_client -servername b.test -sess_out "$sess-1"
  stop_server
  [ -s "$keys" ] || fail "--ticket-keys-file: no keys written to a missing file"
  start_server keys2 --cert "$certs/b.pem,$certs/b.key,b.test" --ticket-keys-file "$keys"
  s_client -servername b.test -sess_in "$sess-1"
  expect_output "resumption across a restart with --ticket-keys-file" "$out" '^Reused, TLSv1\.3'
  stop_server
  start_server keys3 --cert "$certs/b.pem,$certs/b.key,b.test"
  s_client -servername b.test -sess_in "$sess-1"
  expect_output "no resumption across a restart with fresh ticket keys" "$out" '^New, TLSv1\.3'
  stop_server

  # --min-version 1.3 refuses TLS 1.2.
  start_server tls13 --cert "$certs/b.pem,$certs/b.key,b.test" --min-version 1.3
  s_client -tls1_2 -servername b.test
  expect_output "min-version 1.3: s_client -tls1_2 refused" "$out" 'Cipher is \(NONE\)'
  expect_server "min-version 1.3: s_client -tls1_2 refused" '^handshake failed: '
  s_client -servername b.test
  expect_output "min-version 1.3: TLS 1.3 accepted" "$out" '^New, TLSv1\.3'
  stop_server

  # Client certificates, required and verified against --client-ca.
  start_server mtls --cert "$certs/b.pem,$certs/b.key,b.test" --client-ca "$certs/ca.pem" \
    --require-client-cert
  s_client -servername b.test -cert "$certs/client.pem" -key "$certs/client.key"
  expect_output "client certificate: echo" "$out" 'ping-monolake'
  expect_server "client certificate accepted" '^handshake ok '
  s_client -servername b.test
  expect_server "no client certificate: refused" '^handshake failed: '
  s_client -servername b.test -cert "$certs/expired.pem" -key "$certs/expired.key"
  expect_server "expired client certificate: refused" '^handshake failed: '
  stop_server
}

# --- openssl s_server as the server of tls_client ---------------------------------------------

s_server_pid=
# start_s_server NAME ARGS...: openssl s_server on a free loopback port, reversing each line.
start_s_server() {
  local log=$tmp/$backend-$1.log attempt
  shift
  for attempt in 1 2 3; do
    port=$(pick_port)
    openssl s_server -accept "127.0.0.1:$port" -rev "$@" >"$log" 2>&1 </dev/null &
    s_server_pid=$!
    pids+=("$s_server_pid")
    for _ in $(seq 100); do
      grep -q '^ACCEPT' "$log" && return 0
      kill -0 "$s_server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$s_server_pid" 2>/dev/null || true
    wait "$s_server_pid" 2>/dev/null || true
  done
  echo "FAIL [$backend] openssl s_server did not start: $(cat "$log")" >&2
  exit 1
}

stop_s_server() {
  kill "$s_server_pid" 2>/dev/null || true
  wait "$s_server_pid" 2>/dev/null || true
}

# tls_client ARGS...: its output goes to $out, its exit status to $client_rc.
client_rc=0
tls_client() {
  client_rc=0
  out=$(timeout 20 "$client_bin" --backend "$backend" --connect "127.0.0.1:$port" \
    --send ping-monolake "$@" 2>&1) || client_rc=$?
}

expect_client_ok() {
  local what=$1 out=$2 pattern=$3
  if [ "$client_rc" -ne 0 ]; then
    fail "$what: tls_client exited $client_rc: $out"
  else
    expect_output "$what" "$out" "$pattern"
  fi
}

expect_client_verify_error() {
  local what=$1 out=$2
  if [ "$client_rc" -ne 1 ]; then
    fail "$what: tls_client exited $client_rc (expected 1): $out"
  elif ! grep -q '^error: ' <<<"$out" || ! grep -qi 'verif' <<<"$out"; then
    fail "$what: expected 'error: ...verify...', got: $out"
  else
    pass
  fi
}

test_our_client_of_s_server() {
  # Default certificate ip.pem (IP 127.0.0.1; chosen without SNI), b.pem for SNI b.test.
  start_s_server s_server -cert "$certs/ip.pem" -key "$certs/ip.key" \
    -servername b.test -cert2 "$certs/b.pem" -key2 "$certs/b.key" -alpn h2,http/1.1

  tls_client --name b.test --ca "$certs/ca.pem"
  expect_client_ok "tls_client to s_server (b.test)" "$out" '^ok .*reply=ekalonom-gnip$'
  # (s_server selects ALPN only with its default certificate, so no SNI here.)
  tls_client --name 127.0.0.1 --ca "$certs/ca.pem" --alpn h2
  expect_client_ok "tls_client ALPN h2" "$out" '^ok alpn=h2 '
  tls_client --name 127.0.0.1 --ca "$certs/ca.pem" --alpn foo,http/1.1
  expect_client_ok "tls_client ALPN foo,http/1.1" "$out" '^ok alpn=http/1\.1 '
  tls_client --name b.test --ca "$certs/ca.pem" --max-version 1.2
  expect_client_ok "tls_client TLS 1.2" "$out" '^ok .*version=TLSv1\.2 '
  tls_client --name b.test --ca "$certs/ca.pem" --repeat 3
  expect_client_ok "tls_client resumption" "$out" '^ok .*resumed=0'
  if [ "$(grep -c '^ok .*resumed=1' <<<"$out")" -ne 2 ]; then
    fail "tls_client resumption: expected the 2nd and 3rd connections resumed: $out"
  fi
  tls_client --name 127.0.0.1 --ca "$certs/ca.pem"
  expect_client_ok "tls_client to an IP address (IP SAN)" "$out" '^ok .*reply=ekalonom-gnip$'

  tls_client --name b.test --ca "$certs/other-ca.pem"
  expect_client_verify_error "tls_client with the wrong CA" "$out"
  tls_client --name c.test --ca "$certs/ca.pem"
  expect_client_verify_error "tls_client with a wrong host name" "$out"
  tls_client --name 127.0.0.2 --ca "$certs/ca.pem"
  expect_client_verify_error "tls_client with a wrong IP address" "$out"
  tls_client --name b.test --ca "$certs/other-ca.pem" --no-verify
  expect_client_ok "tls_client --no-verify" "$out" '^ok '
  stop_s_server

  start_s_server s_server-expired -cert "$certs/expired.pem" -key "$certs/expired.key"
  tls_client --name a.test --ca "$certs/ca.pem"
  expect_client_verify_error "tls_client with an expired certificate" "$out"
  stop_s_server
}

for backend in "${backends[@]}"; do
  start=$(date +%s)
  before=$failures
  test_clients_of_our_server
  test_our_client_of_s_server
  echo "$backend: $((failures - before)) failure(s), $(($(date +%s) - start))s"
done
echo "$checks check(s) passed, $failures failed"
[ "$failures" -eq 0 ]
