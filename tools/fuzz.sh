#!/usr/bin/env bash
# Runs every libFuzzer target (ml_cc_fuzz in bazel/defs.bzl, found by its "libfuzzer" tag) for
# SECONDS each on a copy of its checked-in corpus, built with --config=asan (clang 14, ASan +
# UBSan). The checked-in corpus is never written to; what a run finds new is thrown away, a crash
# input is kept in $FUZZ_ARTIFACTS (default: a temporary directory, printed) to add as a seed.
#
#   tools/fuzz.sh [SECONDS]      default 30
#
# Prints one line per target, "//PKG:NAME PASSED|FAILED", and last "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}

targets=$(bazel query 'attr(tags, "libfuzzer", //...)' 2>/dev/null)
if [ -z "$targets" ]; then
  echo "tools/fuzz.sh: no fuzz targets found"
  echo "0 passed, 1 failed"
  exit 1
fi
if ! bazel build --config=asan $targets; then
  echo "0 passed, 1 failed"
  exit 1
fi
bin=$(bazel info --config=asan bazel-bin 2>/dev/null)
artifacts=${FUZZ_ARTIFACTS:-$(mktemp -d "${TMPDIR:-/tmp}/ml-fuzz.XXXXXX")}
work=$(mktemp -d "${TMPDIR:-/tmp}/ml-fuzz-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT

# fuzz_one TARGET CORPUS: runs one target; its verdict goes to $work/NAME.verdict, its log
# beside it.
fuzz_one() {
  local target=$1 corpus=$2 pkg name copy
  pkg=${target#//}
  pkg=${pkg%%:*}
  name=${target##*:}
  copy="$work/$name"
  mkdir -p "$copy"
  [ -n "$corpus" ] && [ -d "$corpus" ] && cp -r "$corpus"/. "$copy"/
  # -timeout: one input that takes 10 s is a finding too; -rss_limit_mb bounds memory.
  if timeout $((seconds + 120)) "$bin/$pkg/$name" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$copy" \
      >"$work/$name.log" 2>&1; then
    echo "$target PASSED ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" |
      grep -o '[0-9]*$') runs in ${seconds} s)" >"$work/$name.verdict"
  else
    { echo "$target FAILED (inputs kept in $artifacts):"; tail -30 "$work/$name.log"; } \
      >"$work/$name.verdict"
  fi
}

# Each fuzzer is one thread: as many run at once as there are CPUs (FUZZ_JOBS to change it).
jobs=${FUZZ_JOBS:-$(nproc)}
running=0
for target in $targets; do
  # Asked here, one at a time: the Bazel server runs one command at a time anyway.
  corpus=$(bazel query --output=build "$target" 2>/dev/null |
    sed -n 's/.*"corpus=\([^"]*\)".*/\1/p' | head -1)
  fuzz_one "$target" "$corpus" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0
failed=0
for target in $targets; do
  verdict="$work/${target##*:}.verdict"
  if [ -s "$verdict" ] && head -1 "$verdict" | grep -q ' PASSED '; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
  cat "$verdict" 2>/dev/null || echo "$target FAILED (no verdict)"
done
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
