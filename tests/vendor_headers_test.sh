#!/usr/bin/env bash
# Vendor headers stay inside the package that wraps them: no header of ours includes one, and
# a .cc file includes one only in its wrapping package. Bazel does not enforce this (/usr/include
# is visible to every target), so this test does. It reads the source tree that README.md, a
# data dependency, links back to.
set -euo pipefail
root=$(dirname "$(realpath "$1")")
cd "$root"

# vendor include pattern -> the only directory whose .cc files may include it
rules=(
  'liburing\.h|liburing/'='runtime/uring/'
  'openssl/'='tls/openssl/'
  'gnutls/'='tls/gnutls/'
  'nghttp2/'='http/h2/'
  'llhttp\.h'='http/h1/'
  'grpcpp/|grpc/|google/protobuf/'='tests/grpc/'
)

status=0
sources=$(git ls-files --cached --others --exclude-standard -- '*.h' '*.cc' 2>/dev/null || find . -name '*.h' -o -name '*.cc')
for rule in "${rules[@]}"; do
  pattern=${rule%%=*}
  allowed=${rule#*=}
  while IFS= read -r hit; do
    [ -z "$hit" ] && continue
    file=${hit%%:*}
    file=${file#./}
    case "$file" in
      third_party/*) continue ;;
      *.h) echo "vendor header in a public header: $hit"; status=1 ;;
      "$allowed"*) ;;
      *) echo "vendor header outside $allowed: $hit"; status=1 ;;
    esac
  done < <(echo "$sources" | xargs grep -HnE "^#include <(${pattern})" 2>/dev/null || true)
done
[ $status -eq 0 ] && echo "vendor headers: ok"
exit $status
