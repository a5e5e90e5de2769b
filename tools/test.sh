#!/usr/bin/env bash
# Sets up the machine (tools/setup.sh), builds, and runs every test with Bazel.
#   tools/test.sh            default configuration (gcc 12)
#   tools/test.sh --asan     ASan + UBSan (clang 14); tests tagged no_asan are left to the default
#   tools/test.sh --clang    clang 14
# Any other argument is passed to `bazel test` (e.g. a target pattern instead of //...).
# Without a target pattern, tests/external_workspace_test.sh (a workspace outside that depends on
# this checkout as @monolake) and tests/new_proxy_test.sh (the tools/new_proxy.sh scaffold, built,
# tested and served) run as two more steps afterwards; BAZEL_JOBS sets their --jobs.
# The last line is "N passed, N failed", counted from Bazel's per-target summary plus that step.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

args=()
targets=()
for arg in "$@"; do
  case "$arg" in
    # Tests tagged no_asan (source-tree checks, the long testssl scan) run in the default build.
    --asan) args+=(--config=asan --test_tag_filters=-no_asan) ;;
    --clang) args+=(--config=clang) ;;
    //*|:*) targets+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
external=0
[ ${#targets[@]} -eq 0 ] && targets=(//...) && external=1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
bazel test --keep_going "${args[@]}" -- "${targets[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

summary_re='^//[^ ]+[[:space:]]+'
passed=$(grep -cE "${summary_re}(\(cached\) )?PASSED" "$log")
failed=$(grep -cE "${summary_re}(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE|FAILED TO BUILD)" "$log")
# A build error can stop Bazel before it lists any test: count it as a failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# A failed test's own log is far above in the output; its tail is repeated here, and appended to
# $FAILURE_DIGEST when that is set (.ci/run prints it last, where a CI log's tail shows it).
print_failure_tails() {
  local target logfile
  grep -A1 -E "${summary_re}(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE)" "$log" |
    awk '/^\/\//{t=$1} /test\.log$/{print t, $1}' | sort -u |
    while read -r target logfile; do
      [ -f "$logfile" ] || continue
      echo "=== ${target}: last 40 lines of ${logfile}"
      tail -n 40 "$logfile"
    done
}
if [ "$failed" -gt 0 ]; then
  print_failure_tails | tee -a "${FAILURE_DIGEST:-/dev/null}"
fi

# Bazel inside a Bazel test sandbox is fragile, so these run here, outside `bazel test`: a
# workspace that depends on this checkout as @monolake, and the tools/new_proxy.sh scaffold.
if [ "$external" -eq 1 ]; then
  for step in tests/external_workspace_test.sh tests/new_proxy_test.sh; do
    if "$step"; then
      echo "$step PASSED"
      passed=$((passed + 1))
    else
      echo "$step FAILED" | tee -a "${FAILURE_DIGEST:-/dev/null}"
      failed=$((failed + 1))
    fi
  done
fi
echo "${passed} passed, ${failed} failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
