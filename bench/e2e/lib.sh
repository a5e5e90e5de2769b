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

# The upstream of the HTTP benchmarks: nginx on CPU $1 answering every GET on 127.0.0.1:$up_port
# with "$body" (keep-alive without limit, no log), plus the server block $2 if given. Uses the
# caller's $tmp, $up_port, $body and $user_line; sets up_group (master and worker PIDs).
start_upstream() {  # start_upstream CPU [SERVER_BLOCK] -> sets up_group
  mkdir -p "$tmp/upstream"
  cat > "$tmp/upstream/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $tmp/upstream/nginx.pid;
error_log $tmp/upstream/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $tmp/upstream/body;
  proxy_temp_path $tmp/upstream/proxy;
  fastcgi_temp_path $tmp/upstream/fastcgi;
  uwsgi_temp_path $tmp/upstream/uwsgi;
  scgi_temp_path $tmp/upstream/scgi;
  default_type text/plain;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$up_port backlog=4096;
    location / { return 200 "$body"; }
  }
  ${2:-}
}
EOF
  taskset -c "$1" nginx -p "$tmp/upstream" -e "$tmp/upstream/error.log" \
    -c "$tmp/upstream/nginx.conf" 2>"$tmp/upstream/stderr.log" &
  local pid=$!
  started+=("$pid")
  wait_port "$up_port" "$pid"
  up_group=$(with_children "$pid")
  regroup "$pid" "$up_group"
}

with_children() {  # with_children PID: "PID CHILDREN..." once it has at least one (5 s at most)
  local w
  for _ in $(seq 50); do
    w=$(children "$1")
    [[ -n ${w// /} ]] && { echo "$1 ${w% }"; return 0; }
    sleep 0.1
  done
  echo "$bench_name: process $1 started no child" >&2
  return 1
}

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
