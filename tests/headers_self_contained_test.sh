#!/usr/bin/env bash
# Every public header compiles on its own (includes what it uses), so a user can include any
# one of them first. Headers under internal/ and test helpers are exempt. Reads the source tree
# that README.md, a data dependency, links back to (like vendor_headers_test).
set -euo pipefail
root=$(dirname "$(realpath "$1")")
cd "$root"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

headers=$(git ls-files --cached --others --exclude-standard -- \
  'base/*.h' 'runtime/*.h' 'transport/*.h' 'tls/*.h' 'codec/*.h' 'http/*.h' 'proxy/*.h' |
  grep -v '/internal/' | grep -vE '(_test|testing|fuzz)[^/]*\.h$' || true)
[ -n "$headers" ] || { echo "no headers found under $root"; exit 1; }

check() {
  local header=$1 log
  log="$2/$(echo "$header" | tr / _).log"
  if ! echo "#include \"$header\"" |
    g++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I. -x c++ - >"$log" 2>&1; then
    echo "not self-contained: $header"
    head -5 "$log"
    return 1
  fi
}
export -f check
count=$(echo "$headers" | wc -l)
if echo "$headers" | xargs -P 2 -I{} bash -c 'check "$@"' _ {} "$out"; then
  echo "$count public headers compile on their own"
else
  exit 1
fi
