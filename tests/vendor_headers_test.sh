#!/usr/bin/env bash
# Vendor headers stay inside the package that wraps them: no header of ours includes one, and
# a .cc file includes one only in its wrapping package. Bazel does not enforce this (/usr/include
# is visible to every target), so this test does. It reads the source tree that README.md, a
# data dependency, links back to.
set -euo pipefail
root=$(dirname "$(realpath "$1")")
cd "$root"

# vendor include pattern -> the directories whose .cc files may include it (space-separated);
# bench/ compares the HTTP/1.1 codec with llhttp alone, so it includes llhttp.h too.
rules=(
  'liburing\.h|liburing/'='runtime/uring/'
  'openssl/'='tls/openssl/'
  'gnutls/'='tls/gnutls/'
  'nghttp2/'='http/h2/'
  'llhttp\.h'='http/h1/ bench/'
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
      bench/*.h)
        # bench/ is a leaf nothing depends on: its private headers follow the .cc rule.
        case " $allowed " in *" bench/ "*) ;; *) echo "vendor header outside $allowed: $hit"; status=1 ;; esac
        ;;
      *.h) echo "vendor header in a public header: $hit"; status=1 ;;
      *)
        ok=0
        for dir in $allowed; do
          case "$file" in "$dir"*) ok=1 ;; esac
        done
        [ $ok -eq 1 ] || { echo "vendor header outside $allowed: $hit"; status=1; }
        ;;
    esac
  done < <(echo "$sources" | xargs grep -HnE "^#include <(${pattern})" 2>/dev/null || true)
done
# A library's internal/ headers are private: only files under that library include them.
while IFS= read -r hit; do
  [ -z "$hit" ] && continue
  file=${hit%%:*}
  file=${file#./}
  included=$(echo "$hit" | sed -E 's|.*#include "([^"]*)/internal/.*|\1|')
  case "$file" in
    "$included"/*) ;;
    *) echo "private header of $included/ included from outside it: $hit"; status=1 ;;
  esac
done < <(echo "$sources" | xargs grep -HnE '^#include "[^"]*/internal/' 2>/dev/null || true)
[ $status -eq 0 ] && echo "vendor headers: ok"
exit $status
