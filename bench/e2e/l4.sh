#!/usr/bin/env bash
# End-to-end L4 (TCP) comparison: the same workloads through monolake and through HAProxy
# (`mode tcp`, nbthread 1) on loopback, in one run, with rotating rounds; medians reported.
# Four targets: monolake as configured by default (tcp_splice = true: splice(2) through a
# pipe), monolake with tcp_splice = false (copying through user space), HAProxy with its
# defaults (no splice) and HAProxy with `option splice-auto`.
#
#   bench/e2e/l4.sh                              # builds //proxy:monolake --config=opt first
#   MONOLAKE=/path/to/monolake bench/e2e/l4.sh   # use this binary, build nothing
#
# Environment (defaults in brackets):
#   ROUNDS [5]          rounds per target and workload; the order rotates every round
#   DURATION [5]        seconds of load per round
#   SHORT_CONNS [64]    connections in flight for the short-connection workload
#   BULK_CONNS [4]      keep-alive connections for the bulk workload
#   PROXY_CPU [1]       CPU both proxies are pinned to (taskset; they take turns)
#   LOAD_CPU [0]        CPU the load generator and nginx are pinned to
#   LOADGEN [python]    python: bench/e2e/short_client.py and bulk_client.py, which let the
#                       connections in flight finish at the end of a round; wrk: wrk 4.1 (-t1),
#                       which resets them when it stops (a reset mid-copy crashed monolake
#                       before 9adf770) and is lighter on the load CPU
#   MONOLAKE_RUNTIME    passed to monolake as usual (io_uring, epoll)
#
# Workloads, both through the proxy to one nginx upstream (worker_processes 1, sendfile):
#   short: every request a new TCP connection (client->proxy and proxy->nginx), one GET with
#          "Connection: close" of a 128-byte file, read to end of stream. Reports connections/s.
#   bulk:  GETs of a 1 MiB file, again and again, on BULK_CONNS keep-alive connections.
#          Reports MiB/s read by the client.
# The proxy's CPU time (utime+stime of the whole process, io_uring worker threads included,
# from /proc/PID/stat) is read before and after each round: proxy CPU per connection (µs) and
# per MiB (ms). The load side has its own CPU, which is usually the bottleneck on 2 CPUs:
# compare the CPU columns, not only the rates.
# Needs: nginx, haproxy, /usr/bin/python3, taskset (wrk for LOADGEN=wrk). Everything binds
# 127.0.0.1 on free ports; every process started is stopped by PID on exit, and the temp dir
# removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/e2e

rounds=${ROUNDS:-5}
duration=${DURATION:-5}
short_conns=${SHORT_CONNS:-64}
bulk_conns=${BULK_CONNS:-4}
proxy_cpu=${PROXY_CPU:-1}
load_cpu=${LOAD_CPU:-0}
loadgen=${LOADGEN:-python}
py=/usr/bin/python3
bench_name=l4.sh
source "$(dirname "$0")/lib.sh"  # free_ports, wait_port

if [[ -n "${MONOLAKE:-}" ]]; then
  monolake=$MONOLAKE
else
  bazel build --config=opt //proxy:monolake >&2
  monolake="$(bazel info --config=opt bazel-bin 2>/dev/null)/proxy/monolake"
fi
[[ $loadgen == python || $loadgen == wrk ]] || { echo "l4.sh: LOADGEN is python or wrk" >&2; exit 1; }
tools=(nginx haproxy taskset)
[[ $loadgen == wrk ]] && tools+=(wrk)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "l4.sh: $tool not found" >&2; exit 1; }
done
[[ -x "$monolake" ]] || { echo "l4.sh: $monolake is not executable" >&2; exit 1; }

tmp=$(mktemp -d /tmp/monolake-l4-bench.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"

read -r up_port ml_port mlc_port ha_port has_port _ < <(free_ports 6)


# --- upstream: nginx --------------------------------------------------------------------------
mkdir -p "$tmp/www" "$tmp/nginx"
head -c 128 /dev/zero | tr '\0' 'x' > "$tmp/www/small"
head -c 1048576 /dev/urandom > "$tmp/www/1m"
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"
cat > "$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$up_port backlog=4096;
    root $tmp/www;
  }
}
EOF
taskset -c "$load_cpu" nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
  2>"$tmp/nginx/stderr.log" &
nginx_pid=$!; pids+=("$nginx_pid")
wait_port "$up_port" "$nginx_pid"

# --- monolake -----------------------------------------------------------------------------------
# start_monolake NAME PORT SPLICE: one monolake process; sets started_pid.
start_monolake() {
  cat > "$tmp/$1.toml" <<EOF
[log]
access_log = "off"
[runtime]
worker_threads = 1
cpu_affinity = false
[servers.bench]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:$2" }
tcp_splice = $3
[[servers.bench.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:$up_port" } }]
EOF
  taskset -c "$proxy_cpu" "$monolake" -c "$tmp/$1.toml" --log-level warn >"$tmp/$1.log" 2>&1 &
  started_pid=$!; pids+=("$started_pid")
}
start_monolake monolake "$ml_port" true; ml_pid=$started_pid
start_monolake monolake-copy "$mlc_port" false; mlc_pid=$started_pid

# --- HAProxy ------------------------------------------------------------------------------------
# Defaults otherwise: no logging; splice only in the second one. maxconn as high as a 20000 fd
# limit allows HAProxy with splice (it needs two fds per connection plus its pipes, maxconn/4
# pipes by default; 9000 asks for 22514); both get the same, far above the load's 64.
# start_haproxy NAME PORT EXTRA_DEFAULTS_LINE: sets started_pid.
start_haproxy() {
  cat > "$tmp/$1.cfg" <<EOF
global
  nbthread 1
  maxconn 7000
defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  $3
frontend bench
  bind 127.0.0.1:$2
  default_backend upstream
backend upstream
  server nginx 127.0.0.1:$up_port
EOF
  taskset -c "$proxy_cpu" haproxy -db -f "$tmp/$1.cfg" >"$tmp/$1.log" 2>&1 &
  started_pid=$!; pids+=("$started_pid")
}
start_haproxy haproxy "$ha_port" ""; ha_pid=$started_pid
start_haproxy haproxy-splice "$has_port" "option splice-auto"; has_pid=$started_pid

names=(monolake monolake-copy haproxy haproxy-splice)
declare -A port_of=([monolake]=$ml_port [monolake-copy]=$mlc_port [haproxy]=$ha_port
                    [haproxy-splice]=$has_port)
declare -A pid_of=([monolake]=$ml_pid [monolake-copy]=$mlc_pid [haproxy]=$ha_pid
                   [haproxy-splice]=$has_pid)
for name in "${names[@]}"; do wait_port "${port_of[$name]}" "${pid_of[$name]}"; done

# Every proxy must return the files intact before anything is measured.
for port in "$up_port" "${port_of[@]}"; do
  for f in small 1m; do
    if ! $py - "$port" "$f" "$tmp/www/$f" <<'PY'
import sys, urllib.request
port, name, path = sys.argv[1:]
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}", timeout=5).read()
sys.exit(0 if body == open(path, "rb").read() else 1)
PY
    then echo "l4.sh: GET /$f through port $port did not return the file" >&2; exit 1; fi
  done
done

# wrk's summary in the same form as the python clients' (LOADGEN=wrk).
cat > "$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\n", summary.requests, summary.bytes,
    summary.duration, e.connect + e.read + e.write + e.timeout + e.status))
end
EOF

cpu_ticks() {  # utime + stime of the whole process (all threads), in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

# run_load NAME WORKLOAD PORT PID: one bounded load run (PID: the proxy, or - for none);
# appends one line to results.tsv and prints a progress line.
run_load() {
  local name=$1 workload=$2 port=$3 pid=$4 before after out
  before=0; [[ $pid != - ]] && before=$(cpu_ticks "$pid")
  if [[ $loadgen == wrk ]]; then
    local args=(-t1 -c"$bulk_conns" "http://127.0.0.1:$port/1m")
    [[ $workload == short ]] &&
      args=(-t1 -c"$short_conns" -H "Connection: close" "http://127.0.0.1:$port/small")
    out=$(timeout $((duration + 30)) taskset -c "$load_cpu" wrk -d"${duration}s" --timeout 10s \
          -s "$tmp/report.lua" "${args[@]}")
  elif [[ $workload == short ]]; then
    out=$(timeout $((duration + 30)) taskset -c "$load_cpu" $py "$here/short_client.py" \
          "$port" /small "$short_conns" "$duration")
  else
    out=$(timeout $((duration + 30)) taskset -c "$load_cpu" $py "$here/bulk_client.py" \
          "$port" /1m "$bulk_conns" "$duration")
  fi
  sleep 0.3  # let the proxy finish closing the last connections; an idle proxy uses no CPU
  if [[ $pid != - ]]; then
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "l4.sh: $name (pid $pid) died during the $workload run; the end of its output:" >&2
      tail -n 5 "$tmp/$name.log" >&2
      exit 1
    fi
    after=$(cpu_ticks "$pid")
  else
    after=0
  fi
  grep -q '^RESULT' <<<"$out" || { echo "l4.sh: the $workload load against port $port printed no result" >&2; exit 1; }
  read -r _ reqs bytes usec errs < <(grep '^RESULT' <<<"$out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$workload" "$reqs" "$bytes" "$usec" \
    $((after - before)) "$errs" >> "$tmp/results.tsv"
  awk -v n="$name" -v w="$workload" -v r="$reqs" -v b="$bytes" -v u="$usec" -v t=$((after - before)) \
      -v hz="$hz" -v e="$errs" 'BEGIN {
    s = u / 1e6; cpu = t / hz
    if (w == "short") printf "  %-14s %-5s %9.0f conn/s  proxy CPU %5.1f%%  %6.2f us/conn  errors %d\n", n, w, r / s, 100 * cpu / s, (r ? cpu * 1e6 / r : 0), e
    else printf "  %-14s %-5s %9.1f MiB/s  proxy CPU %5.1f%%  %6.3f ms/MiB  errors %d\n", n, w, b / 1048576 / s, 100 * cpu / s, (b ? cpu * 1e3 / (b / 1048576) : 0), e
  }' >&2
}

echo "monolake $monolake (pids $ml_pid, copy $mlc_pid), haproxy (pids $ha_pid, splice $has_pid), nginx (pid $nginx_pid); proxies on CPU $proxy_cpu, load ($loadgen) and nginx on CPU $load_cpu" >&2
: > "$tmp/results.tsv"
for workload in short bulk; do
  echo "== $workload: warm-up (1 s each, not counted), direct-to-nginx baseline, then $rounds rounds" >&2
  for p in "${port_of[@]}"; do
    timeout 30 taskset -c "$load_cpu" $py "$here/bulk_client.py" "$p" /small 4 1 >/dev/null
  done
  run_load direct "$workload" "$up_port" -
  for r in $(seq "$rounds"); do
    shift_by=$(( (r - 1) % ${#names[@]} ))
    order=("${names[@]:shift_by}" "${names[@]:0:shift_by}")
    for name in "${order[@]}"; do
      run_load "$name" "$workload" "${port_of[$name]}" "${pid_of[$name]}"
    done
  done
done

for pid in "${pid_of[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "l4.sh: proxy $pid died during the run" >&2; exit 1; }
done

for name in monolake monolake-copy; do
  warnings=$(grep -c WARN "$tmp/$name.log" || true)
  (( warnings == 0 )) || echo "l4.sh: $name logged $warnings warnings, e.g.: $(grep -m1 WARN "$tmp/$name.log")" >&2
done

$py - "$tmp/results.tsv" "$hz" "$rounds" "$duration" "$short_conns" "$bulk_conns" "$loadgen" <<'PY'
import statistics, sys
path, hz, rounds, duration, short_conns, bulk_conns, loadgen = sys.argv[1:]
hz = float(hz)
rows = [l.rstrip("\n").split("\t") for l in open(path)]
targets = ["monolake", "monolake-copy", "haproxy", "haproxy-splice"]
def runs(name, workload):
    out = []
    for n, w, reqs, nbytes, usec, ticks, errs in rows:
        if n == name and w == workload:
            s = int(usec) / 1e6
            cpu = int(ticks) / hz
            mib = int(nbytes) / 1048576
            out.append(dict(conn_s=int(reqs) / s, mib_s=mib / s, busy=100 * cpu / s,
                            us_conn=cpu * 1e6 / int(reqs) if int(reqs) else float("nan"),
                            ms_mib=cpu * 1e3 / mib if mib else float("nan"), errs=int(errs)))
    return out
def fmt(v, digits):
    return f"{v:,.{digits}f}"
def median_of(name, workload, key):
    return statistics.median(r[key] for r in runs(name, workload))
def ratio(name, base, workload, key):
    # Median and spread of the per-round ratios (each round runs every target once).
    per_round = [a[key] / b[key] for a, b in zip(runs(name, workload), runs(base, workload))]
    return f"{statistics.median(per_round):.2f} ({min(per_round):.2f}–{max(per_round):.2f})"
print(f"\nMedians of {rounds} rounds of {duration} s per target, load from {loadgen} (short: "
      f"{short_conns} connections in flight, one request each with Connection: close, 128-byte body; "
      f"bulk: {bulk_conns} keep-alive connections, 1 MiB body).")
print("Direct-to-nginx: one run, no proxy, for scale. Ratios: median (min–max) of the per-round ratios.\n")
print("| workload | metric | direct to nginx | monolake (splice) | monolake (copy) | HAProxy 2.6 | "
      "HAProxy splice-auto | monolake / HAProxy | monolake / HAProxy splice-auto |")
print("|---|---|---|---|---|---|---|---|---|")
table = [("short", "connections/s", "conn_s", 0, True),
         ("short", "proxy CPU per connection (µs)", "us_conn", 2, False),
         ("short", "proxy CPU busy (%)", "busy", 1, False),
         ("bulk", "MiB/s", "mib_s", 1, True),
         ("bulk", "proxy CPU per MiB (ms)", "ms_mib", 3, False),
         ("bulk", "proxy CPU busy (%)", "busy", 1, False)]
for workload, label, key, digits, has_direct in table:
    cells = [fmt(median_of(t, workload, key), digits) for t in targets]
    direct = fmt(median_of("direct", workload, key), digits) if has_direct else ""
    print(f"| {workload} | {label} | {direct} | " + " | ".join(cells) +
          f" | {ratio('monolake', 'haproxy', workload, key)}"
          f" | {ratio('monolake', 'haproxy-splice', workload, key)} |")
print("\nEvery round, in run order:")
for workload, label, key, digits, _ in table:
    for name in targets:
        values = ", ".join(fmt(r[key], digits) for r in runs(name, workload))
        print(f"  {workload} {label}, {name}: {values}")
errors = 0
for name in ["direct"] + targets:
    for workload in ("short", "bulk"):
        e = sum(r["errs"] for r in runs(name, workload))
        if e:
            errors += e
            print(f"\nwarning: {name} {workload}: {e} client errors (failed connections or non-200) in total")
if not errors:
    print("\nNo client errors (failed connections, non-200 responses) in any run.")
PY
