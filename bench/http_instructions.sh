#!/bin/bash
# Instructions per parse under callgrind: the codec's request head, llhttp alone on it, the
# response head, a 1 KiB chunked body (16- or 256-byte chunks), and writing both heads. Runs
# //bench:http_parse_count for N1 and N2 parses and divides the difference in instructions by
# N2 - N1, so start-up and exit cancel out. Build it first:
#   bazel build --config=opt //bench:http_parse_count && bench/http_instructions.sh
set -euo pipefail
bin=${BIN:-bazel-bin/bench/http_parse_count}
n1=${N1:-1000}
n2=${N2:-11000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" >/dev/null \
    2>"$out/log"
  grep -o 'Collected : [0-9]*' "$out/log" | grep -o '[0-9]*$'
}
for mode in ${MODES:-codec llhttp response chunked16 chunked256 write_request write_response}; do
  a=$(count "$mode" "$n1")
  b=$(count "$mode" "$n2")
  echo "$mode: $(((b - a) / (n2 - n1))) instructions per parse"
done
