# Shared by the end-to-end benchmark scripts (sourced, not run): a temporary directory, the
# monolake binary to measure, and servers started in groups (a PID and the PIDs it spawned)
# that are stopped by PID when the script exits, however it exits.
#
#   bench_name=h2.sh
#   source "$(dirname "$0")/lib.sh"
#   bench_init monolake-h2-bench    # sets $tmp and $monolake; stops what was started at exit

# --- processes: started in groups (a PID and the PIDs it spawned), stopped by PID -------------
started=()  # "pid [child pids...]" per started server
proc_state() { awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null || true; }
stop_group() {  # stop_group "PID [CHILDREN...]": TERM to PID, up to 10 s, then KILL them all
  local pid first i alive st
  read -r first _ <<<"$1"
  kill -TERM "$first" 2>/dev/null || true
  for i in $(seq 100); do
    alive=0
    for pid in $1; do
      st=$(proc_state "$pid")
      [[ -n $st && $st != Z ]] && alive=1
    done
    (( alive )) || break
    sleep 0.1
  done
  for pid in $1; do
    st=$(proc_state "$pid")
    if [[ -n $st && $st != Z ]]; then
      echo "$bench_name: pid $pid did not stop in 10 s after SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait "$first" 2>/dev/null || true
  local kept=() g
  for g in "${started[@]}"; do [[ $g == "$1" ]] || kept+=("$g"); done
  started=("${kept[@]}")
}
regroup() {  # regroup OLD NEW: the started group OLD is now known as NEW (children found)
  local i
  for i in "${!started[@]}"; do [[ ${started[$i]} == "$1" ]] && started[$i]=$2; done
  return 0
}
cleanup() {
  local g
  while (( ${#started[@]} )); do
    g=${started[0]}
    stop_group "$g"
  done
  rm -rf "$tmp"
}

# N distinct free loopback ports on one line, chosen while all are held so they differ.
free_ports() {
  /usr/bin/python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])' "$1"
}

wait_port() {  # wait_port PORT PID: until PORT accepts, or fail if PID died / 10 s passed
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || {
      echo "$bench_name: process $2 exited before listening on $1" >&2
      return 1
    }
    sleep 0.1
  done
  echo "$bench_name: nothing listens on port $1 after 10 s" >&2
  return 1
}

children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr -s ' \n' ' ' || true; }

bench_init() {
  tmp=$(mktemp -d "/tmp/$1.XXXXXX")
  if [[ -n "${MONOLAKE:-}" ]]; then
    monolake=$MONOLAKE
  else
    bazel build --config=opt //proxy:monolake >&2
    # Copy at once: bazel-bin moves when something else builds with another configuration.
    cp "$(bazel info --config=opt bazel-bin 2>/dev/null)/proxy/monolake" "$tmp/monolake"
    monolake=$tmp/monolake
  fi
  [[ -x "$monolake" ]] || { echo "$bench_name: $monolake is not executable" >&2; exit 1; }
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  ulimit -n "$(ulimit -Hn)"
}
