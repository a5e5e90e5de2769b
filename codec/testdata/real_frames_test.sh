#!/usr/bin/env bash
# The checked-in frames in codec/testdata/real are what Apache Thrift's Python library
# (python3-thrift, visible to /usr/bin/python3 only) makes today: regenerate and compare.
set -euo pipefail
out="${TEST_TMPDIR:-$(mktemp -d)}/frames"
/usr/bin/python3 codec/testdata/gen_thrift_frames.py "$out"
n=0
for f in codec/testdata/real/*.bin; do
  cmp "$f" "$out/real/$(basename "$f")"
  n=$((n + 1))
done
[ "$n" = "$(ls "$out/real" | wc -l)" ]
echo "$n frames match python3-thrift's output"
