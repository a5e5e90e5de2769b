#!/usr/bin/env bash
# Audits tls_echo_server's TLS configuration with testssl (Debian's testssl.sh package), once per
# backend, on loopback: no finding of severity MEDIUM, HIGH or CRITICAL (nor FATAL, a failed
# scan), and exactly TLS 1.2 and TLS 1.3 offered. The findings that fail are printed.
#
# The certificate is a.key's, as in a.pem (a.test and *.a.test, RSA 2048), but issued for 200
# days with a CRL distribution point: the 30-day a.pem would only report the throw-away PKI
# ("expires < 60 days", "neither CRL nor OCSP URI provided"), not the server's configuration.
# Usage: tls_testssl_test.sh TLS_ECHO_SERVER MAKE_TEST_CERTS [BACKEND...]
set -euo pipefail
server_bin=$(realpath "$1")
make_certs=$2
shift 2
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(openssl gnutls)
command -v testssl >/dev/null || {
  echo "FAIL: testssl is not installed (tools/setup.sh installs the testssl.sh package)" >&2
  exit 1
}

tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/tls-testssl.XXXXXX")
certs=$tmp/certs
bash "$make_certs" "$certs" >/dev/null
(
  cd "$certs"
  export OPENSSL_CONF=/dev/null
  printf '%s\n' 'subjectAltName=DNS:a.test,DNS:*.a.test' 'basicConstraints=CA:FALSE' \
    'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' \
    'crlDistributionPoints=URI:http://crl.invalid/monolake-test-ca.crl' >testssl.ext
  openssl req -new -key a.key -subj /CN=a.test -out testssl.csr 2>/dev/null
  openssl x509 -req -in testssl.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 200 \
    -extfile testssl.ext -out a-testssl.pem 2>/dev/null
)

server_pid=
cleanup() { [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

failures=0
for backend in "${backends[@]}"; do
  start=$(date +%s)
  log=$tmp/$backend-server.log
  # Made here, not by the background job's redirection, which may run after the first sed.
  : >"$log"
  "$server_bin" --backend "$backend" --listen 127.0.0.1:0 \
    --cert "$certs/a-testssl.pem,$certs/a.key,a.test;*.a.test" --alpn h2,http/1.1 >>"$log" 2>&1 &
  server_pid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || {
    echo "FAIL [$backend] tls_echo_server did not start: $(cat "$log")" >&2
    exit 1
  }

  # Protocols, cipher categories, forward secrecy, server preferences and defaults (certificate,
  # tickets...), vulnerabilities. Not -e/-E (each cipher, ~2x slower: -s, -f and -P's per-protocol
  # cipher order already list what is offered) nor -c (client simulation). a.test is the name
  # tested (SNI and certificate match); --ip and --nodns none keep testssl off DNS.
  json=$tmp/$backend.json
  text=$tmp/$backend.txt
  rc=0
  timeout 300 testssl --quiet --color 0 --warnings off --nodns none --ip 127.0.0.1 \
    --connect-timeout 10 --openssl-timeout 10 --add-ca "$certs/ca.pem" \
    --jsonfile-pretty "$json" -p -s -f -P -S -U "a.test:$port" >"$text" 2>&1 || rc=$?
  # testssl's exit status counts findings in some versions; the JSON is what is judged.
  if [ "$rc" -eq 124 ] || [ ! -s "$json" ]; then
    echo "FAIL [$backend] testssl did not finish (status $rc):" >&2
    tail -30 "$text" >&2
    failures=$((failures + 1))
  elif ! /usr/bin/python3 - "$backend" "$json" <<'PY'; then
import json
import sys

backend, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    report = json.load(f)
findings = []
for scan in report.get("scanResult", []):
    for section, items in scan.items():
        if isinstance(items, list):
            findings += [dict(item, section=section) for item in items]
# WARN means testssl could not run a check (its own races included: a ticket that arrives after
# its s_client has closed reads as a "connect problem"); shown, not judged. FATAL: scan failed.
problems = [f for f in findings if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL", "FATAL")]
for f in findings:
    if f.get("severity") == "WARN":
        print(f"note [{backend}] testssl {f['section']}/{f['id']} WARN: {f.get('finding')}",
              file=sys.stderr)
protocols = {f["id"]: f.get("finding", "") for f in findings if f["section"] == "protocols"}
wanted = {"SSLv2": False, "SSLv3": False, "TLS1": False, "TLS1_1": False,
          "TLS1_2": True, "TLS1_3": True}
for proto, offered in wanted.items():
    got = protocols.get(proto)
    if got is None:
        problems.append({"id": proto, "severity": "-", "finding": "not tested"})
    elif offered != got.startswith("offered"):
        problems.append({"id": proto, "severity": "-",
                         "finding": f"{got!r}, expected {'offered' if offered else 'not offered'}"})
if len(findings) < 50:
    problems.append({"id": "scan", "severity": "-",
                     "finding": f"only {len(findings)} findings: the scan did not complete"})
for p in problems:
    print(f"FAIL [{backend}] testssl {p.get('section', '')}/{p['id']} {p.get('severity')}: "
          f"{p.get('finding')}", file=sys.stderr)
print(f"{backend}: {len(findings)} testssl findings, {len(problems)} problem(s); protocols: "
      + ", ".join(f"{k}={v}" for k, v in protocols.items()))
sys.exit(1 if problems else 0)
PY
    failures=$((failures + 1))
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "FAIL [$backend] tls_echo_server died during the scan: $(tail -5 "$log")" >&2
    failures=$((failures + 1))
  else
    kill -TERM "$server_pid"
    status=0
    wait "$server_pid" || status=$?
    [ "$status" -eq 0 ] || {
      echo "FAIL [$backend] tls_echo_server exited with status $status on SIGTERM" >&2
      failures=$((failures + 1))
    }
  fi
  server_pid=
  echo "$backend: $(grep -c '^handshake ' "$log") handshakes, $(($(date +%s) - start))s"
done
[ "$failures" -eq 0 ]
