#!/usr/bin/env bash
# Generates a throw-away PKI for tests into DIR (never committed):
#   ca.pem / ca.key              a small CA
#   other-ca.pem                 an unrelated CA (for "wrong CA" tests)
#   a.pem / a.key                leaf for a.test and *.a.test (RSA 2048, PKCS#8 key)
#   b.pem / b.key                leaf for b.test (EC P-256, SEC1 "EC PRIVATE KEY" key)
#   rsa1.pem / rsa1.key          leaf for a.test with a PKCS#1 "RSA PRIVATE KEY" key
#   enc.pem / enc.key            leaf for a.test with an encrypted PKCS#8 key, passphrase "secret"
#   ip.pem / ip.key              leaf for IP 127.0.0.1 and localhost
#   client.pem / client.key      client certificate (CN=client) signed by the CA
#   expired.pem / expired.key    leaf for a.test that expired
# Leaf .pem files hold the leaf followed by nothing else (the CA is self-signed and direct).
# Usage: make_test_certs.sh DIR
set -euo pipefail
dir=${1:?usage: make_test_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
export OPENSSL_CONF=/dev/null  # no system config surprises

q() { "$@" >/dev/null 2>&1 || { echo "make_test_certs: failed: $*" >&2; exit 1; }; }

q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
  -subj "/CN=Monolake Test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
q openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 30 \
  -subj "/CN=Other Test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"

# leaf NAME KEYFILE SAN [DAYS_START DAYS_END] — signs KEYFILE's key with the CA
leaf() {
  local name=$1 key=$2 san=$3 ext
  ext=$(mktemp)
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$ext"
  local cn=${san#*:}
  cn=${cn%%,*}  # the first name of the SAN list
  q openssl req -new -key "$key" -out "$name.csr" -subj "/CN=$cn" ${OPENSSL_PASSIN:+-passin "$OPENSSL_PASSIN"}
  q openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" \
    -days "${4:-30}" -extfile "$ext" ${OPENSSL_PASSIN:+-passin "$OPENSSL_PASSIN"}
  rm -f "$name.csr" "$ext"
}

q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out a.key            # PKCS#8
leaf a a.key "DNS:a.test,DNS:*.a.test"
q openssl ecparam -name prime256v1 -genkey -noout -out b.key                        # SEC1 EC
leaf b b.key "DNS:b.test"
q openssl genrsa -traditional -out rsa1.key 2048                                    # PKCS#1
leaf rsa1 rsa1.key "DNS:a.test"
q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes-256-cbc -pass pass:secret -out enc.key
OPENSSL_PASSIN=pass:secret leaf enc enc.key "DNS:a.test"
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ip.key
leaf ip ip.key "IP:127.0.0.1,DNS:localhost"
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client.key
leaf client client.key "DNS:client"

# Expired: valid from two days ago to yesterday.
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out expired.key
q openssl req -new -key expired.key -out expired.csr -subj "/CN=a.test"
printf 'subjectAltName=DNS:a.test\n' >expired.ext
# OpenSSL 3.0 has no -not_before; a negative validity ends before "now".
q openssl x509 -req -in expired.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out expired.pem \
  -extfile expired.ext -days -1
rm -f expired.csr expired.ext ca.srl
grep -q "BEGIN RSA PRIVATE KEY" rsa1.key || { echo "make_test_certs: rsa1.key is not PKCS#1" >&2; exit 1; }
grep -q "BEGIN EC PRIVATE KEY" b.key || { echo "make_test_certs: b.key is not SEC1" >&2; exit 1; }
grep -q "BEGIN ENCRYPTED PRIVATE KEY" enc.key || { echo "make_test_certs: enc.key is not encrypted" >&2; exit 1; }
echo "$dir"
