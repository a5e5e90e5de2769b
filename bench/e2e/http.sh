#!/usr/bin/env bash
# End-to-end HTTP/1.1 comparison: monolake, nginx and HAProxy 2.6 as reverse proxies in front
# of ONE nginx upstream that answers every GET with a 1 KiB body, on loopback, one worker each,
# in one run, with alternating rounds; medians reported as a markdown table.
#
#   bench/e2e/http.sh                  # throughput, layouts C and A (builds monolake first)
#   bench/e2e/http.sh memory [N]       # RSS per idle keep-alive connection (N: 10000)
#   bench/e2e/http.sh tail             # open-loop tail latency at a fixed rate, layouts C and A
#   MONOLAKE=/path/to/monolake bench/e2e/http.sh   # use this binary, build nothing
#   MONOLAKE_B=/path/to/other bench/e2e/http.sh   # throughput: a fifth target, "monolake-b",
#                                  # the same configuration on another binary, in the same
#                                  # rounds: per-round ratios B / A say what a change did
#   MONOLAKE_B_SERVER='compression = {}' bench/e2e/http.sh   # monolake-b: the same binary
#                                  # (unless MONOLAKE_B names one) with these lines added to
#                                  # its server table; MONOLAKE_B_ROUTE='rate_limit = {...}'
#                                  # adds lines to each of its routes: B / A is what a feature
#                                  # costs when on
#   WRK_HEADER='Accept-Encoding: gzip' bench/e2e/http.sh   # a header wrk sends to every target
#
# Throughput (wrk 4.1, -t1, CONNS keep-alive connections, GET of the 1 KiB body):
#   C ("one CPU"): wrk, the proxy and the upstream nginx all pinned to CPU_ONE. When they get
#     the whole CPU, requests/s ~ 1 / (CPU per request of wrk + proxy + upstream), so the rows
#     differ by the proxies' CPU per request. The machine may be shared, so the table also
#     gives that sum measured ("all CPU": proxy and upstream from schedstat as below, wrk from
#     its rusage) and the share of the CPU those processes got.
#   A ("proxy alone"): the proxy alone on CPU_ONE, wrk and the upstream on CPU_OTHER. Reports
#     requests/s and the proxy's CPU per request: the sum of the first field (ns on CPU) of
#     /proc/PID/task/*/schedstat over every thread of the proxy's processes (nginx: master and
#     worker), read before and after each round, divided by the requests wrk completed. The
#     load side (wrk + upstream on one CPU) can be the limit here: read the CPU column.
# A direct-to-upstream row (wrk straight to the upstream nginx) is measured the same way, for
# scale. Each layout: a 1 s warm-up per target, then ROUNDS rounds of DURATION s per target,
# the order rotating every round. All three proxies run all the time (pinned to CPU_ONE; they
# take turns, an idle proxy uses no CPU); the upstream nginx is re-pinned between layouts.
# wrk's errors (connect/read/write/timeout, non-2xx/3xx) are counted per run; a run with any
# prints wrk's own output. Takes about 4 minutes with the defaults.
#
# Memory: for each proxy in turn, a fresh process sized for N + 1,024 connections (monolake
# max_connections, nginx worker_connections, HAProxy maxconn): after a warm-up (8 connections
# x 4 requests), N client connections each make one keep-alive GET and then stay open and
# idle; the proxy's RSS growth (VmRSS from /proc, summed over its processes) divided by N. The
# connections are checked to be still open afterwards. A second fresh process sized for 1,024
# connections gives the idle RSS without the up-front allocation for capacity (nginx fills
# its connection and event arrays at start), so the table also has (RSS with N - that) / N.
# N is limited by `ulimit -n` (client and proxy each need N fds; the script raises the soft
# limit to the hard one). About 30 s for N = 10,000.
#
# Tail: latency at a fixed request rate, measured open-loop by bench/open_loop.cc (built here
# with `bazel build --config=opt //bench:open_loop` unless OPEN_LOOP=/path is given): request i
# is due at t0 + i / RATE and timed from that due time to the end of its response, so a proxy
# that stalls is charged for every request due during the stall (wrk, being closed-loop, would
# not send them: "coordinated omission"). Per layout (pinned as above, open_loop where wrk
# goes): a 1 s wrk warm-up per target, then nginx's closed-loop maximum, `wrk -t1 -c50 -d3s`
# through the nginx proxy; RATE is half of that unless given. Then ROUNDS rounds of open_loop
# per target (--rate RATE --connections CONNS --duration DURATION, its own 1 s warm-up first,
# 2 s per-request timeout), the order rotating. The table per layout: medians of p50, p99,
# p99.9 and max per target, p99 and p99.9 as ratios to nginx's (median of the per-round ratios,
# min-max), and errors and dropped requests summed over the rounds (dropped: due but never
# sent because all CONNS connections stayed busy for over a second; their latency is unknown
# and not in the percentiles). With HISTOGRAMS=DIR, the last round of each target also writes
# DIR/LAYOUT-TARGET.hist (`latency_us count`); bench/plot_histogram.py draws them. Takes about
# 2 minutes per layout with the defaults.
#
# Environment (defaults in brackets):
#   ROUNDS [5]        rounds per target and layout
#   DURATION [5]      seconds of wrk per round
#   CONNS [50]        wrk connections (keep-alive)
#   LAYOUTS ["C A"]   which layouts to run, in this order
#   CPU_ONE [1]       C: the only CPU; A: the proxy's CPU
#   CPU_OTHER [0]     A: wrk and the upstream's CPU
#   MONOLAKE_RUNTIME  passed to monolake as usual (io_uring, epoll)
#   RATE              tail: requests/s for open_loop [half nginx's closed-loop maximum]
#   HISTOGRAMS        tail: directory for the last round's latency histograms [none]
#   OPEN_LOOP         tail: the open_loop binary to use, build nothing [bazel build]
#
# Configurations (written to a temp dir; see the heredocs below):
#   upstream: nginx, worker_processes 1, `return 200 "<1024 bytes>"`, access_log off
#   monolake: proxy_type "http", worker_threads 1, access_log "off", --log-level warn
#   nginx:    worker_processes 1, proxy_pass to an `upstream` block with keepalive 64,
#             proxy_http_version 1.1, proxy_set_header Connection "", access_log off
#   HAProxy:  mode http, http-reuse always, nbthread 1, no logging
# Note what differs: monolake adds X-Forwarded-For, X-Forwarded-Proto and an X-Request-Id to
# every request (docs/config.md); nginx and HAProxy as configured here add none.
# Needs: nginx, haproxy, wrk, taskset, /usr/bin/python3. Everything binds 127.0.0.1 on free
# ports; every process started is stopped by PID on exit (also on error or SIGTERM; TERM, then
# KILL after 10 s) and the temp dir removed; every load run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/../.."

# A feature measured on monolake-b: the same binary unless MONOLAKE_B names another.
if [[ -n ${MONOLAKE_B_SERVER:-}${MONOLAKE_B_ROUTE:-} && -z ${MONOLAKE_B:-} ]]; then
  MONOLAKE_B=same
fi
mode=${1:-throughput}
case $mode in
  throughput) ;;
  memory) mem_conns=${2:-10000} ;;
  tail) ;;
  *) echo "usage: bench/e2e/http.sh [memory [N] | tail]" >&2; exit 2 ;;
esac
rounds=${ROUNDS:-5}
duration=${DURATION:-5}
conns=${CONNS:-50}
layouts=${LAYOUTS:-C A}
cpu_one=${CPU_ONE:-1}
cpu_other=${CPU_OTHER:-0}
py=/usr/bin/python3
body_size=1024

for tool in nginx haproxy wrk taskset $py; do
  command -v "$tool" >/dev/null || { echo "http.sh: $tool not found" >&2; exit 1; }
done
bench_name=http.sh
source "$(dirname "$0")/lib.sh"
bench_init monolake-http-bench

read -r up_port ml_port ng_port ha_port mlb_port < <(free_ports 5)

if [[ $mode == tail ]]; then
  if [[ -n ${OPEN_LOOP:-} ]]; then
    open_loop=$OPEN_LOOP
  else
    bazel build --config=opt //bench:open_loop >&2
    cp "$(bazel info --config=opt bazel-bin 2>/dev/null)/bench/open_loop" "$tmp/open_loop"
    open_loop=$tmp/open_loop
  fi
  [[ -x $open_loop ]] || { echo "http.sh: $open_loop is not executable" >&2; exit 1; }
fi


user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"
body=$(head -c "$body_size" /dev/zero | tr '\0' 'x')

# --- upstream: nginx, 1 KiB body -------------------------------------------------------------

# --- monolake -----------------------------------------------------------------------------------
start_monolake() {  # start_monolake CPU [EXTRA_RUNTIME_LINES] [EXTRA_SERVER_LINES] -> ml_group
  cat > "$tmp/monolake.toml" <<EOF
[log]
access_log = "off"
[runtime]
worker_threads = 1
drain_timeout_sec = 5
${2:-}
[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$ml_port" }
${3:-}
[[servers.bench.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:$up_port" } }]
[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:$up_port" } }]
EOF
  taskset -c "$1" "$monolake" -c "$tmp/monolake.toml" --log-level warn >"$tmp/monolake.log" 2>&1 &
  ml_group=$!
  started+=("$ml_group")
  wait_port "$ml_port" "$ml_group"
  if [[ -n ${MONOLAKE_B:-} ]]; then  # the same configuration on its own port, binary B
    # ... plus MONOLAKE_B_SERVER after the listener line and MONOLAKE_B_ROUTE after each path.
    SERVER_LINES=${MONOLAKE_B_SERVER:-} ROUTE_LINES=${MONOLAKE_B_ROUTE:-} \
      awk -v from="127.0.0.1:$ml_port" -v to="127.0.0.1:$mlb_port" '
        { gsub(from, to); print }
        /^listener = / && ENVIRON["SERVER_LINES"] != "" { print ENVIRON["SERVER_LINES"] }
        /^path = / && ENVIRON["ROUTE_LINES"] != "" { print ENVIRON["ROUTE_LINES"] }
      ' "$tmp/monolake.toml" > "$tmp/monolake-b.toml"
    local binary_b=$MONOLAKE_B
    [[ $binary_b == same ]] && binary_b=$monolake
    taskset -c "$1" "$binary_b" -c "$tmp/monolake-b.toml" --log-level warn \
      >"$tmp/monolake-b.log" 2>&1 &
    mlb_group=$!
    started+=("$mlb_group")
    wait_port "$mlb_port" "$mlb_group"
  fi
}

# --- nginx as the proxy -------------------------------------------------------------------------
start_nginx_proxy() {  # start_nginx_proxy CPU [WORKER_CONNECTIONS] -> ng_group
  mkdir -p "$tmp/proxy"
  cat > "$tmp/proxy/nginx.conf" <<EOF
$user_line
worker_processes 1;
worker_rlimit_nofile $(( ${2:-16384} + 1024 ));
daemon off;
pid $tmp/proxy/nginx.pid;
error_log $tmp/proxy/error.log warn;
events { worker_connections ${2:-16384}; }
http {
  access_log off;
  client_body_temp_path $tmp/proxy/body;
  proxy_temp_path $tmp/proxy/proxy;
  fastcgi_temp_path $tmp/proxy/fastcgi;
  uwsgi_temp_path $tmp/proxy/uwsgi;
  scgi_temp_path $tmp/proxy/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  upstream up {
    server 127.0.0.1:$up_port;
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$ng_port backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  taskset -c "$1" nginx -p "$tmp/proxy" -e "$tmp/proxy/error.log" -c "$tmp/proxy/nginx.conf" \
    2>"$tmp/proxy/stderr.log" &
  local pid=$!
  started+=("$pid")
  wait_port "$ng_port" "$pid"
  ng_group=$(with_children "$pid")
  regroup "$pid" "$ng_group"
}

# --- HAProxy ------------------------------------------------------------------------------------
start_haproxy() {  # start_haproxy CPU [MAXCONN] -> ha_group
  # HAProxy wants 2 fds per connection of maxconn and refuses to start when it cannot raise
  # RLIMIT_NOFILE that far (strict-limits); past the limit, let it start with what there is.
  local strict=""
  (( 2 * ${2:-9000} + 200 > $(ulimit -n) )) && strict="no strict-limits"
  cat > "$tmp/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn ${2:-9000}
  $strict
defaults
  mode http
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend bench
  bind 127.0.0.1:$ha_port
  default_backend upstream
backend upstream
  server nginx 127.0.0.1:$up_port
EOF
  taskset -c "$1" haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
  ha_group=$!
  started+=("$ha_group")
  wait_port "$ha_port" "$ha_group"
}

check_body() {  # check_body PORT: GET / and /a/b must return 200 and exactly the upstream body
  local f
  $py - "$1" "$body" <<'PY' && return 0
import sys, urllib.request
port, body = sys.argv[1], sys.argv[2].encode()
for path in ("/", "/a/b?c=d"):
    r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
    got = r.read()
    if r.status != 200 or got != body:
        sys.exit(f"GET {path}: status {r.status}, {len(got)} bytes")
PY
  echo "http.sh: port $1 did not return the 1 KiB body; the proxies' logs end with:" >&2
  for f in "$tmp/monolake.log" "$tmp/proxy/error.log" "$tmp/haproxy.log"; do
    [[ -s $f ]] && { echo "--- $f" >&2; tail -n 10 "$f" >&2; }
  done
  return 1
}

check_alive() {  # check_alive NAME PIDS...: exit with the end of NAME's log if any PID died
  local name=$1 p
  shift
  for p in "$@"; do
    if ! kill -0 "$p" 2>/dev/null || [[ $(proc_state "$p") == Z ]]; then
      echo "http.sh: $name (pid $p) died during a run; the end of its output:" >&2
      tail -n 5 "$tmp/$name.log" "$tmp/proxy/error.log" 2>/dev/null >&2 || true
      exit 1
    fi
  done
}

# === memory mode ================================================================================
if [[ $mode == memory ]]; then
  (( mem_conns + 64 <= $(ulimit -n) )) ||
    { echo "http.sh: $mem_conns connections need ulimit -n > $((mem_conns + 64)) for the client" >&2; exit 1; }
  # The client: warm-up (8 connections x 4 requests, closed), RSS, then N connections that each
  # make one keep-alive GET and stay open, 2 s of rest, RSS again, and a check that the proxy
  # closed none of them. Prints: NAME RSS_BEFORE RSS_AFTER N CLOSED SECONDS_TO_OPEN.
  cat > "$tmp/idle_client.py" <<'PY'
import socket, sys, time
name, port, n, pids = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

def rss_kib():
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total

def one_request(s):
    s.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit(f"{name}: connection closed before the response head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    if lines[0].split()[1] != b"200":
        raise SystemExit(f"{name}: status line {lines[0]!r}")
    length = next(int(l.split(b":", 1)[1]) for l in lines[1:] if l.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit(f"{name}: connection closed in the body")
        rest += chunk

for _ in range(8):
    s = socket.create_connection(("127.0.0.1", port))
    for _ in range(4):
        one_request(s)
    s.close()
time.sleep(1)
before = rss_kib()
conns = []
t0 = time.monotonic()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    one_request(s)
    conns.append(s)
opened = time.monotonic() - t0
if n:
    time.sleep(2)
after = rss_kib()
closed = 0
for s in conns:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
print(f"{name}\t{before}\t{after}\t{n}\t{closed}\t{opened:.1f}")
for s in conns:
    s.close()
PY
  start_upstream "$cpu_other"
  # Capacity: room for N client connections plus upstream connections. The client and each
  # proxy are separate processes with the same fd limit (the hard limit, raised to above), so
  # N up to that limit less 64 needs no further raising (monolake's max_open_files can only
  # raise the hard limit with CAP_SYS_RESOURCE).
  cap=$((mem_conns + 1024))
  : > "$tmp/memory.tsv"
  # Per proxy, two fresh processes: one sized for 1,024 connections (its idle RSS after the
  # warm-up, no connections held), one sized for N + 1,024 that then holds the N connections.
  # The first shows what a proxy allocates up front for its capacity (nginx: connection and
  # event arrays for all worker_connections), which the growth alone does not.
  for name in monolake nginx haproxy; do
    for size in small full; do
      if [[ $size == small ]]; then c=1024; held=0; else c=$cap; held=$mem_conns; fi
      case $name in
        monolake)
          start_monolake "$cpu_one" "" "max_connections = $c
timeout = { server_keepalive_timeout_sec = 600 }"
          group=$ml_group; port=$ml_port ;;
        nginx) start_nginx_proxy "$cpu_one" "$c"; group=$ng_group; port=$ng_port ;;
        haproxy) start_haproxy "$cpu_one" "$c"; group=$ha_group; port=$ha_port ;;
      esac
      check_body "$port"
      echo "== $name (pids $group), sized for $c connections: $held idle keep-alive connections" >&2
      timeout 300 taskset -c "$cpu_other" $py "$tmp/idle_client.py" "$name-$size" "$port" "$held" $group \
        >> "$tmp/memory.tsv"
      read -r _ b a n cl o < <(tail -n1 "$tmp/memory.tsv")
      awk -v b="$b" -v a="$a" -v n="$n" -v c="$cl" -v o="$o" 'BEGIN {
        if (n) printf "  RSS %d KiB -> %d KiB: %.2f KiB per connection (%d closed by the proxy; opened in %s s)\n", b, a, (a - b) / n, c, o
        else printf "  RSS %d KiB\n", b }' >&2
      sleep 0.5
      stop_group "$group"
    done
  done
  echo
  echo "RSS of the proxy (VmRSS, summed over its processes; nginx: master + worker), one worker each,"
  echo "$mem_conns idle keep-alive client connections that each made one GET of the 1 KiB body."
  echo "\"sized for 1,024\": a separate fresh process with capacity for 1,024 connections (monolake"
  echo "max_connections, nginx worker_connections, HAProxy maxconn), after the same warm-up (8"
  echo "connections x 4 requests, closed); the others: capacity $cap. Measured $(date -u)."
  echo
  echo "| proxy | RSS sized for 1,024, idle (KiB) | RSS sized for $cap, before (KiB) | RSS with $mem_conns idle connections (KiB) | growth per connection (KiB) | / nginx | incl. up-front per connection (KiB) | / nginx |"
  echo "|---|---|---|---|---|---|---|---|"
  awk -F'\t' '
    { split($1, p, "-"); if (p[2] == "small") small[p[1]] = $2; else { b[p[1]] = $2; a[p[1]] = $3; n[p[1]] = $4; closed += $5 } }
    END {
      label["monolake"] = "monolake"; label["nginx"] = "nginx 1.22"; label["haproxy"] = "HAProxy 2.6"
      split("monolake nginx haproxy", order, " ")
      gn = (a["nginx"] - b["nginx"]) / n["nginx"]; tn = (a["nginx"] - small["nginx"]) / n["nginx"]
      for (i = 1; i <= 3; i++) {
        x = order[i]; g = (a[x] - b[x]) / n[x]; t = (a[x] - small[x]) / n[x]
        printf "| %s | %d | %d | %d | %.2f | %s | %.2f | %s |\n", label[x], small[x], b[x], a[x], g,
               (gn > 0 ? sprintf("%.2f", g / gn) : ""), t, (tn > 0 ? sprintf("%.2f", t / tn) : "")
      }
      if (closed) printf "\nwarning: %d connections were closed by a proxy before the measurement ended\n", closed
    }' "$tmp/memory.tsv"
  exit 0
fi

# === tail mode ==================================================================================
if [[ $mode == tail ]]; then
  start_upstream "$cpu_one"
  start_monolake "$cpu_one"
  start_nginx_proxy "$cpu_one"
  start_haproxy "$cpu_one"
  for port in "$up_port" "$ml_port" "$ng_port" "$ha_port"; do check_body "$port"; done
  [[ -n ${HISTOGRAMS:-} ]] && mkdir -p "$HISTOGRAMS"
  : > "$tmp/tail.tsv"
  : > "$tmp/rates.tsv"

  # run_open_loop LAYOUT ROUND NAME PORT LOAD_CPU RATE [PIDS...]: one open_loop run; its JSON
  # line goes to tail.tsv after the layout, round and target.
  run_open_loop() {
    local layout=$1 round=$2 name=$3 port=$4 load_cpu=$5 rate=$6 out rc=0
    shift 6
    local hist=()
    [[ -n ${HISTOGRAMS:-} && $round == "$rounds" ]] && hist=(--histogram "$HISTOGRAMS/$layout-$name.hist")
    out=$(timeout $((duration + 40)) taskset -c "$load_cpu" "$open_loop" --port "$port" \
          --rate "$rate" --duration "$duration" --connections "$conns" "${hist[@]}" 2>"$tmp/open_loop.err") || rc=$?
    check_alive "$name" "$@"
    if (( rc != 0 )) || [[ $out != "{"* ]]; then
      echo "http.sh: open_loop against $name (port $port) failed (status $rc):" >&2
      cat "$tmp/open_loop.err" >&2
      exit 1
    fi
    printf '%s\t%s\t%s\t%s\n' "$layout" "$round" "$name" "$out" >> "$tmp/tail.tsv"
    $py -c 'import json, sys; print("  {} r{} {:8s} {achieved_rate:8.0f} req/s  p50 {p50_us} us  p99 {p99_us} us  p99.9 {p999_us} us  max {max_us} us  errors {errors}  dropped {dropped}".format(*sys.argv[2:], **json.loads(sys.argv[1])))' \
      "$out" "$layout" "$round" "$name" >&2
  }

  targets=(monolake nginx haproxy direct)
  echo "monolake $monolake (pid $ml_group), nginx proxy (pids $ng_group), haproxy (pid $ha_group), upstream nginx (pids $up_group), open_loop $open_loop" >&2
  for layout in $layouts; do
    case $layout in
      C) load_cpu=$cpu_one ;;
      A) load_cpu=$cpu_other ;;
      *) echo "http.sh: unknown layout $layout (C or A)" >&2; exit 1 ;;
    esac
    for p in $up_group; do taskset -a -p -c "$load_cpu" "$p" >/dev/null; done
    for port in "$ml_port" "$ng_port" "$ha_port" "$up_port"; do
      timeout 30 taskset -c "$load_cpu" wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null
    done
    max_rate=$(timeout 40 taskset -c "$load_cpu" wrk -t1 -c50 -d3s "http://127.0.0.1:$ng_port/" |
               awk '/^Requests\/sec:/ { printf "%.0f\n", $2 }')
    [[ -n $max_rate ]] || { echo "http.sh: wrk through nginx gave no Requests/sec" >&2; exit 1; }
    rate=${RATE:-$((max_rate / 2))}
    printf '%s\t%s\t%s\n' "$layout" "$max_rate" "$rate" >> "$tmp/rates.tsv"
    echo "== layout $layout: proxies on CPU $cpu_one, open_loop and upstream on CPU $load_cpu; nginx closed-loop maximum $max_rate req/s; open-loop at $rate req/s, $rounds rounds of ${duration} s" >&2
    for r in $(seq "$rounds"); do
      for i in 0 1 2 3; do
        name=${targets[$(( (i + r - 1) % 4 ))]}
        case $name in
          monolake) run_open_loop "$layout" "$r" monolake "$ml_port" "$load_cpu" "$rate" $ml_group ;;
          nginx) run_open_loop "$layout" "$r" nginx "$ng_port" "$load_cpu" "$rate" $ng_group ;;
          haproxy) run_open_loop "$layout" "$r" haproxy "$ha_port" "$load_cpu" "$rate" $ha_group ;;
          direct) run_open_loop "$layout" "$r" direct "$up_port" "$load_cpu" "$rate" ;;
        esac
      done
    done
  done

  $py - "$tmp/tail.tsv" "$tmp/rates.tsv" "$rounds" "$duration" "$conns" "$cpu_one" "$cpu_other" <<'PY'
import json, statistics, sys
path, rates_path, rounds, duration, conns, cpu_one, cpu_other = sys.argv[1:]
runs = []
for line in open(path):
    layout, rnd, name, js = line.rstrip("\n").split("\t", 3)
    runs.append(dict(layout=layout, round=int(rnd), name=name, **json.loads(js)))
rates = {l: (int(m), r) for l, m, r in (line.split() for line in open(rates_path))}
names = [("monolake", "monolake"), ("nginx", "nginx 1.22"), ("haproxy", "HAProxy 2.6"),
         ("direct", "direct to upstream (no proxy)")]
where = {"C": f"open_loop, proxy and upstream all on CPU {cpu_one}",
         "A": f"proxy alone on CPU {cpu_one}, open_loop and upstream on CPU {cpu_other}"}

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def us(v):
    return "" if v is None else f"{v:,.0f}"

def ratio(layout, name, key):  # median of the per-round ratios to nginx, and their spread
    ref = {r["round"]: r[key] for r in runs if r["layout"] == layout and r["name"] == "nginx"}
    rs = [r[key] / ref[r["round"]] for r in runs if r["layout"] == layout and r["name"] == name
          and r[key] is not None and ref.get(r["round"])]
    if not rs:
        return ""
    return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"

for layout, (max_rate, rate) in rates.items():
    print(f"\n### Layout {layout}: {where[layout]}")
    print(f"\nOpen-loop at {rate} req/s (nginx's closed-loop maximum, wrk -t1 -c50 -d3s: {max_rate} req/s), "
          f"{conns} keep-alive connections, GET / of a 1 KiB body; latency from each request's due time to "
          f"the end of its response (no coordinated omission). Medians of {rounds} rounds of {duration} s "
          f"(after 1 s of warm-up each); ratios: median of the per-round ratios to nginx (min–max).\n")
    print("| target | achieved req/s | p50 µs | p99 µs | p99.9 µs | max µs | p99 / nginx | p99.9 / nginx | errors | dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, label in names:
        rs = [r for r in runs if r["layout"] == layout and r["name"] == name]
        if not rs:
            continue
        m = {k: med(r[k] for r in rs) for k in ("achieved_rate", "p50_us", "p99_us", "p999_us", "max_us")}
        print(f"| {label} | {us(m['achieved_rate'])} | {us(m['p50_us'])} | {us(m['p99_us'])} | "
              f"{us(m['p999_us'])} | {us(m['max_us'])} | {ratio(layout, name, 'p99_us')} | "
              f"{ratio(layout, name, 'p999_us')} | {sum(r['errors'] for r in rs)} | {sum(r['dropped'] for r in rs)} |")
    if any(r["dropped"] for r in runs if r["layout"] == layout):
        print("\nDropped requests were due but never sent (every connection busy for over a second, or still "
              "queued at the end): their latency is unknown and not in the percentiles.")
print("\nEvery round, in run order (p99.9 µs):")
for layout in rates:
    for name, _ in names:
        rs = [r for r in runs if r["layout"] == layout and r["name"] == name]
        if rs:
            print(f"  {layout} {name:8s} " + ", ".join(us(r["p999_us"]) for r in rs))
PY
  exit 0
fi

# === throughput mode ============================================================================
start_upstream "$cpu_one"
start_monolake "$cpu_one"
start_nginx_proxy "$cpu_one"
start_haproxy "$cpu_one"
for port in "$up_port" "$ml_port" "$ng_port" "$ha_port"; do check_body "$port"; done

cat > "$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d %d %d\n", summary.requests, summary.bytes,
    summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
EOF

sched_ns() {  # ns on CPU, summed over every thread of the given processes
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null || true; done |
    awk '{ s += $1 } END { printf "%.0f\n", s }'
}
stat_ticks() {  # utime + stime of the given processes (exited threads included), clock ticks
  local p
  for p in "$@"; do awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat"; done |
    awk '{ s += $1 } END { printf "%.0f\n", s }'
}
hz=$(getconf CLK_TCK)
user_sys_ticks() {  # "UTIME STIME" of the given processes, clock ticks
  local p
  for p in "$@"; do awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$p/stat"; done |
    awk '{ u += $1; s += $2 } END { printf "%.0f %.0f\n", u, s }'
}

times_ns() {  # the children's user + system time from bash's `times` output (its 2nd line)
  sed -n 2p <<<"$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%.0f\n", t * 1e9 }'
}

# run_load LAYOUT ROUND NAME PORT LOAD_CPU [PIDS...]: one wrk run; one line to results.tsv.
# Records the proxy's CPU (PIDS), the upstream's and wrk's own (so, in layout C, the CPU of
# everything that served the requests, whatever else the machine was running).
run_load() {
  local layout=$1 round=$2 name=$3 port=$4 load_cpu=$5
  shift 5
  local ns0=0 ns1=0 t0=0 t1=0 u0 u1 out rc us0="0 0" us1="0 0"
  if (( $# )); then ns0=$(sched_ns "$@"); t0=$(stat_ticks "$@"); us0=$(user_sys_ticks "$@"); fi
  u0=$(sched_ns $up_group)
  local header=()
  [[ -n ${WRK_HEADER:-} ]] && header=(-H "$WRK_HEADER")
  out=$(timeout $((duration + 30)) taskset -c "$load_cpu" wrk -t1 -c"$conns" -d"${duration}s" \
        --timeout 5s "${header[@]}" -s "$tmp/report.lua" "http://127.0.0.1:$port/"; rc=$?
        echo "RC $rc"; times)
  u1=$(sched_ns $up_group)
  rc=$(sed -n 's/^RC //p' <<<"$out")
  local wrk_ns
  wrk_ns=$(times_ns "$(sed -n '/^RC /,$p' <<<"$out" | tail -n +2)")
  out=$(sed '/^RC /,$d' <<<"$out")
  sleep 0.3  # let the proxy finish closing the connections
  check_alive "$name" "$@"
  if (( $# )); then ns1=$(sched_ns "$@"); t1=$(stat_ticks "$@"); us1=$(user_sys_ticks "$@"); fi
  local user_ticks sys_ticks
  read -r user_ticks sys_ticks < <(awk -v a="$us0" -v b="$us1" 'BEGIN {
    split(a, x, " "); split(b, y, " "); print y[1] - x[1], y[2] - x[2] }')
  if [[ $rc != 0 ]] || ! grep -q '^RESULT' <<<"$out"; then
    echo "http.sh: wrk against $name (port $port) failed (status $rc):" >&2
    echo "$out" >&2
    exit 1
  fi
  local reqs bytes usec ec er ew et es p50 p99 p999
  read -r _ reqs bytes usec ec er ew et es p50 p99 p999 < <(grep '^RESULT' <<<"$out")
  if (( ec + er + ew + et + es )); then
    { echo "http.sh: $layout round $round: errors through $name (connect $ec, read $er, write $ew, timeout $et, non-2xx/3xx $es); wrk said:"
      grep -v '^RESULT' <<<"$out"; } | tee -a "$tmp/errors.txt" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$layout" "$round" "$name" \
    "$reqs" "$bytes" "$usec" $((ns1 - ns0)) $(((t1 - t0) * 1000000000 / hz)) $((u1 - u0)) \
    "$wrk_ns" $((ec + er + ew + et + es)) "$p50" "$p99" "$p999" "$user_ticks" "$sys_ticks" \
    >> "$tmp/results.tsv"
  awk -v l="$layout" -v r="$round" -v n="$name" -v q="$reqs" -v u="$usec" -v ns=$((ns1 - ns0)) \
      -v all=$((ns1 - ns0 + u1 - u0 + wrk_ns)) -v p99="$p99" -v e=$((ec + er + ew + et + es)) 'BEGIN {
    s = u / 1e6
    printf "  %s r%d %-8s %8.0f req/s", l, r, n, q / s
    if (n != "direct") printf "  proxy CPU %5.1f%% %6.2f us/req", 100 * ns / 1e9 / s, ns / 1e3 / q
    else printf "  %-31s", ""
    printf "  all CPU %6.2f us/req  p99 %6.2f ms  errors %d\n", all / 1e3 / q, p99 / 1000, e
  }' >&2
}

: > "$tmp/results.tsv"
targets=(monolake nginx haproxy direct)
[[ -n ${MONOLAKE_B:-} ]] && targets+=(monolake-b)
echo "monolake $monolake (pid $ml_group), monolake-b ${MONOLAKE_B:-none} (pid ${mlb_group:-}), nginx proxy (pids $ng_group), haproxy (pid $ha_group), upstream nginx (pids $up_group)" >&2
for layout in $layouts; do
  case $layout in
    C) load_cpu=$cpu_one ;;
    A) load_cpu=$cpu_other ;;
    *) echo "http.sh: unknown layout $layout (C or A)" >&2; exit 1 ;;
  esac
  for p in $up_group; do taskset -a -p -c "$load_cpu" "$p" >/dev/null; done
  echo "== layout $layout: proxies on CPU $cpu_one, wrk and upstream on CPU $load_cpu; warm-up (1 s each), then $rounds rounds of ${duration} s" >&2
  warm_ports=("$ml_port" "$ng_port" "$ha_port" "$up_port")
  [[ -n ${MONOLAKE_B:-} ]] && warm_ports+=("$mlb_port")
  for port in "${warm_ports[@]}"; do
    timeout 30 taskset -c "$load_cpu" wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null
  done
  for r in $(seq "$rounds"); do
    for i in "${!targets[@]}"; do
      name=${targets[$(( (i + r - 1) % ${#targets[@]} ))]}
      case $name in
        monolake) run_load "$layout" "$r" monolake "$ml_port" "$load_cpu" $ml_group ;;
        monolake-b) run_load "$layout" "$r" monolake-b "$mlb_port" "$load_cpu" $mlb_group ;;
        nginx) run_load "$layout" "$r" nginx "$ng_port" "$load_cpu" $ng_group ;;
        haproxy) run_load "$layout" "$r" haproxy "$ha_port" "$load_cpu" $ha_group ;;
        direct) run_load "$layout" "$r" direct "$up_port" "$load_cpu" ;;
      esac
    done
  done
done

warnings=$(grep -c -E 'WARN|ERROR' "$tmp/monolake.log" || true)
(( warnings == 0 )) || echo "http.sh: monolake logged $warnings warnings/errors, e.g.: $(grep -m1 -E 'WARN|ERROR' "$tmp/monolake.log")" >&2
for f in "$tmp/proxy/error.log" "$tmp/upstream/error.log"; do
  [[ -s $f ]] && echo "http.sh: $f: $(wc -l < "$f") lines, e.g.: $(head -n1 "$f")" >&2
done
[[ -s $tmp/haproxy.log ]] && echo "http.sh: haproxy said: $(head -n3 "$tmp/haproxy.log")" >&2

$py - "$tmp/results.tsv" "$rounds" "$duration" "$conns" "$cpu_one" "$cpu_other" "$layouts" <<'PY'
import statistics, sys
path, rounds, duration, conns, cpu_one, cpu_other, layouts = sys.argv[1:]
layouts = layouts.split()
rows = []
for line in open(path):
    (layout, rnd, name, reqs, nbytes, usec, ns, stat_ns, up_ns, wrk_ns, errs, p50, p99, p999,
     user_ticks, sys_ticks) = line.rstrip("\n").split("\t")
    # schedstat's ns split by the utime:stime ratio of the same round (ticks are coarse).
    ticks = int(user_ticks) + int(sys_ticks)
    user_share = int(user_ticks) / ticks if ticks else float("nan")
    s = int(usec) / 1e6
    reqs = int(reqs)
    all_ns = int(ns) + int(up_ns) + int(wrk_ns)
    rows.append(dict(layout=layout, name=name, rps=reqs / s, reqs=reqs,
                     all_us_req=all_ns / 1e3 / reqs if reqs else float("nan"),
                     all_busy=100 * all_ns / 1e9 / s,
                     us_req=int(ns) / 1e3 / reqs if reqs else float("nan"),
                     stat_us_req=int(stat_ns) / 1e3 / reqs if reqs else float("nan"),
                     busy=100 * int(ns) / 1e9 / s, bytes_req=int(nbytes) / reqs if reqs else 0,
                     errs=int(errs), p99=int(p99) / 1e3, p999=int(p999) / 1e3,
                     round=int(rnd),
                     user_us_req=int(ns) * user_share / 1e3 / reqs if reqs else float("nan"),
                     sys_us_req=int(ns) * (1 - user_share) / 1e3 / reqs if reqs else float("nan")))
def runs(layout, name):
    return [r for r in rows if r["layout"] == layout and r["name"] == name]
def med(layout, name, key):
    rs = runs(layout, name)
    return statistics.median(r[key] for r in rs) if rs else None
def fmt(v, digits):
    return "" if v is None else f"{v:,.{digits}f}"
def ratio(v, ref):
    return "" if v is None or not ref else f"{v / ref:.2f}"

names = [("monolake", "monolake"), ("nginx", "nginx 1.22"), ("haproxy", "HAProxy 2.6"),
         ("direct", "direct to upstream (no proxy)")]
if any(r["name"] == "monolake-b" for r in rows):
    names.insert(1, ("monolake-b", "monolake B"))
print(f"\nMedians of {rounds} rounds of {duration} s per target and layout; wrk -t1 -c{conns} keep-alive, "
      f"GET / of a 1 KiB body from one nginx upstream.")
print(f"C: wrk, proxy and upstream all on CPU {cpu_one}. A: proxy alone on CPU {cpu_one}, wrk and "
      f"upstream on CPU {cpu_other}. Proxy CPU: /proc/PID/task/*/schedstat, all threads (nginx: master + worker);")
print("all CPU (C): proxy + upstream nginx (schedstat) + wrk (its rusage), per request.\n")
print("| target | req/s (C) | / nginx | all CPU µs/req (C) | / nginx | req/s (A) | / nginx | proxy CPU µs/req (A) | / nginx | proxy busy (A) |")
print("|---|---|---|---|---|---|---|---|---|---|")
ref_c, ref_a, ref_cpu = med("C", "nginx", "rps"), med("A", "nginx", "rps"), med("A", "nginx", "us_req")
ref_all = med("C", "nginx", "all_us_req")
for name, label in names:
    c, a, allc = med("C", name, "rps"), med("A", name, "rps"), med("C", name, "all_us_req")
    cpu = med("A", name, "us_req") if name != "direct" else None
    busy = med("A", name, "busy") if name != "direct" else None
    print(f"| {label} | {fmt(c, 0)} | {ratio(c, ref_c)} | {fmt(allc, 2)} | {ratio(allc, ref_all)} | "
          f"{fmt(a, 0)} | {ratio(a, ref_a)} | {fmt(cpu, 2)} | {ratio(cpu, ref_cpu)} | "
          f"{fmt(busy, 1) + ' %' if busy is not None else ''} |")
if "C" in layouts:
    shares = ", ".join(f"{n} {fmt(med('C', n, 'all_busy'), 0)} %" for n, _ in names if runs("C", n))
    print(f"\nIn C the processes above got {shares} "
          f"of CPU {cpu_one} (medians); the rest went to other tasks, so req/s (C) ~ 1 / all CPU per request only near 100 %.")

def per_round(layout, name, key):
    # Median (min–max) of the per-round ratios to nginx (each round runs every target once).
    mine = {r["round"]: r[key] for r in runs(layout, name)}
    ref = {r["round"]: r[key] for r in runs(layout, "nginx")}
    rs = [mine[k] / ref[k] for k in mine if k in ref and ref[k]]
    if not rs:
        return ""
    return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"
print("\nPer-round ratios to nginx, median (min–max), and the proxy's CPU split (schedstat ns split")
print("by the utime:stime ratio of the same round), closed-loop tail from wrk:\n")
print("| layout | target | proxy CPU µs/req | user | sys | CPU / nginx | req/s / nginx | p99 ms | p99.9 ms | p99.9 / nginx |")
print("|---|---|---|---|---|---|---|---|---|---|")
for layout in layouts:
    for name, label in names:
        if name == "direct" or not runs(layout, name):
            continue
        print(f"| {layout} | {label} | {fmt(med(layout, name, 'us_req'), 2)} | "
              f"{fmt(med(layout, name, 'user_us_req'), 2)} | {fmt(med(layout, name, 'sys_us_req'), 2)} | "
              f"{per_round(layout, name, 'us_req')} | {per_round(layout, name, 'rps')} | "
              f"{fmt(med(layout, name, 'p99'), 2)} | {fmt(med(layout, name, 'p999'), 2)} | "
              f"{per_round(layout, name, 'p999')} |")

def b_over_a(layout, key):
    mine = {r["round"]: r[key] for r in runs(layout, "monolake-b")}
    ref = {r["round"]: r[key] for r in runs(layout, "monolake")}
    rs = [mine[k] / ref[k] for k in mine if k in ref and ref[k]]
    return f"{statistics.median(rs):.3f} ({min(rs):.3f}–{max(rs):.3f})" if rs else ""
if any(r["name"] == "monolake-b" for r in rows):
    print("\nmonolake B / monolake A, per round, median (min–max):")
    for layout in layouts:
        print(f"  {layout}: proxy CPU per request {b_over_a(layout, 'us_req')}, user {b_over_a(layout, 'user_us_req')}, "
              f"sys {b_over_a(layout, 'sys_us_req')}, req/s {b_over_a(layout, 'rps')}, p99.9 {b_over_a(layout, 'p999')}")

print("\nEvery round, in run order:")
for layout in layouts:
    for name, _ in names:
        rs = runs(layout, name)
        print(f"  {layout} {name:8s} req/s: " + ", ".join(fmt(r["rps"], 0) for r in rs))
        if name != "direct":
            print(f"  {layout} {name:8s} proxy CPU µs/req: " + ", ".join(fmt(r["us_req"], 2) for r in rs))
        print(f"  {layout} {name:8s} all CPU µs/req: " + ", ".join(fmt(r["all_us_req"], 2) for r in rs))
print("\nMedian p99 latency (ms) and bytes per response as wrk read them (head + body):")
for layout in layouts:
    print(f"  {layout}: " + "; ".join(f"{n} {fmt(med(layout, n, 'p99'), 2)} ms, {fmt(med(layout, n, 'bytes_req'), 0)} B"
                                      for n, _ in names if runs(layout, n)))
# Threads that exited during a round (io_uring io-wq workers) drop out of task/*/schedstat;
# utime+stime from /proc/PID/stat keeps them (at clock-tick resolution). Say so if they differ.
for layout in layouts:
    for name, _ in [n for n in names if n[0] != "direct"]:
        a, b = med(layout, name, "us_req"), med(layout, name, "stat_us_req")
        if a and b and abs(a - b) > 0.1 * max(a, b):
            print(f"\nnote: {layout} {name}: schedstat gives {a:.2f} µs/req, /proc/PID/stat utime+stime {b:.2f} µs/req "
                  f"(threads that exited during rounds are only in the latter)")
errors = sum(r["errs"] for r in rows)
if errors:
    for layout in layouts:
        for name, _ in names:
            e = sum(r["errs"] for r in runs(layout, name))
            if e:
                print(f"\nwarning: {layout} {name}: {e} wrk errors (socket errors or non-2xx/3xx) in total")
else:
    print("\nNo wrk errors (connect, read, write, timeout, non-2xx/3xx) in any run.")
PY
if [[ -s $tmp/errors.txt ]]; then
  echo; echo "wrk output of the runs with errors:"; cat "$tmp/errors.txt"
fi
