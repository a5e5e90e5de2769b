#!/usr/bin/env bash
# End-to-end HTTP/2 comparison: monolake, nginx 1.22 and h2o 2.2 as reverse proxies that speak
# HTTP/2 to the client and HTTP/1.1 (keep-alive) to ONE nginx upstream answering every GET with
# a 1 KiB body; loopback, one worker each, in one run, alternating rounds, medians as markdown.
#
#   bench/e2e/h2.sh                                 # layouts C, A, T; builds monolake first
#   LAYOUTS=A bench/e2e/h2.sh                       # only A (h2c, proxy alone on a CPU)
#   CONNS=6 STREAMS=10 bench/e2e/h2.sh              # 60 streams in flight instead of 500
#   MONOLAKE=/path/to/monolake bench/e2e/h2.sh      # use this binary, build nothing
#
# Load: h2load (nghttp2-client) -t1 -c CONNS -m STREAMS -D DURATION, GET / of the 1 KiB body.
# Plain listeners are HTTP/2 with prior knowledge (h2c; h2load's default for http:// URIs).
#   A ("proxy alone"): the proxy alone on CPU_ONE, h2load and the upstream on CPU_OTHER.
#     Reports requests/s and the proxy's CPU per request: the first field (ns on CPU) of
#     /proc/PID/task/*/schedstat summed over every thread of the proxy's processes (nginx: master
#     and worker; h2o: its process, whose threads do all the work), read before and after each
#     run, divided by the 2xx responses h2load counted. The load side (h2load + upstream on one CPU) can be the
#     limit: read the proxy busy column.
#   C ("one CPU"): h2load, proxy and upstream all on CPU_ONE; requests/s ~ 1 / (CPU per request
#     of all three), so the rows differ by the proxies' CPU per request. The table gives that
#     sum measured (proxy + upstream from schedstat, h2load from its rusage).
#   T ("A over TLS"): as A, but to each proxy's TLS listener (TLS 1.3 with TLS 1.2 allowed,
#     ALPN h2; a throw-away P-256 certificate made with openssl in the temp dir). Each run
#     includes the CONNS handshakes (h2load makes new connections every run).
# A direct-to-upstream row (h2load --h1, no pipelining: -m 1, the same CONNS) gives scale in C
# and A. Each layout: a 1 s warm-up per target, then ROUNDS rounds of DURATION s per target,
# the order rotating every round. All proxies run all the time, pinned to CPU_ONE (they take
# turns; an idle proxy uses no CPU); the upstream is re-pinned between layouts.
# Also per run: how many connections the upstream accepted (its stub_status, on another port),
# per 1,000 responses: with CONNS x STREAMS requests in flight a proxy needs that many upstream
# HTTP/1.1 connections, and one that keeps fewer idle (nginx `keepalive 64`; monolake's pool
# keeps 64 idle per upstream) closes and reopens connections all the time.
# h2load's counts are checked every run: any failed, errored or timed-out request, or any
# non-2xx status, is flagged and h2load's output printed at the end.
#
# Environment (defaults in brackets):
#   ROUNDS [5]        rounds per target and layout
#   DURATION [5]      seconds of h2load (-D) per round
#   CONNS [50]        h2load connections (-c)
#   STREAMS [10]      concurrent streams per connection (-m)
#   KEEPALIVE [64]    idle upstream connections kept: nginx `keepalive`, monolake
#                     `upstream_max_idle_connections` (h2o keeps what it has)
#   LAYOUTS ["C A T"] which layouts to run, in this order: C, A, T
#   CPU_ONE [1]       C: the only CPU; A, T: the proxy's CPU
#   CPU_OTHER [0]     A, T: h2load's and the upstream's CPU
#   MONOLAKE_RUNTIME  passed to monolake as usual (io_uring, epoll)
#
# Configurations (written to a temp dir; see the heredocs below):
#   upstream: nginx, worker_processes 1, `return 200 "<1024 bytes>"`, access_log off
#   monolake: proxy_type "http", worker_threads 1, access_log "off", --log-level warn,
#             upstream_http_version "http11" (keep-alive pool), [http2] defaults
#   nginx:    worker_processes 1, `listen ... http2` (h2c prior knowledge; `ssl http2` for T),
#             proxy_pass to an `upstream` block with keepalive 64, proxy_http_version 1.1,
#             proxy_set_header Connection "", access_log off
#   h2o:      num-threads 1, proxy.reverse.url to the upstream, no access-log directive (off),
#             its proxy defaults (keep-alive to the upstream, proxy.timeout.keepalive 2 s)
# Note what differs: monolake adds X-Forwarded-For, X-Forwarded-Proto and an X-Request-Id to
# every request; h2o by default X-Forwarded-For, X-Forwarded-Proto and Via
# (proxy.emit-x-forwarded-headers, proxy.emit-via-header); nginx as configured adds none.
# Needs: nginx, h2o, h2load, nghttp, openssl (T), taskset, /usr/bin/python3. Everything binds
# 127.0.0.1 on free ports; every process started is stopped by PID on exit (also on error or
# SIGTERM; TERM, then KILL after 10 s) and the temp dir removed; every load run is bounded by
# `timeout`. Takes about 5 minutes with the defaults (C and A about 2 each, T 1.5).
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${ROUNDS:-5}
duration=${DURATION:-5}
conns=${CONNS:-50}
streams=${STREAMS:-10}
KEEPALIVE=${KEEPALIVE:-64}
layouts=${LAYOUTS:-C A T}
cpu_one=${CPU_ONE:-1}
cpu_other=${CPU_OTHER:-0}
py=/usr/bin/python3
body_size=1024

for tool in nginx h2o h2load nghttp openssl taskset $py; do
  command -v "$tool" >/dev/null || { echo "h2.sh: $tool not found" >&2; exit 1; }
done
for layout in $layouts; do
  case $layout in C|A|T) ;; *) echo "h2.sh: unknown layout $layout (C, A or T)" >&2; exit 2 ;; esac
done
bench_name=h2.sh
source "$(dirname "$0")/lib.sh"
bench_init monolake-h2-bench

read -r up_port ml_port ng_port ho_port ml_tls ng_tls ho_tls st_port < <(free_ports 8)


user_line=""
h2o_user=""
if [[ $(id -u) -eq 0 ]]; then user_line="user root;"; h2o_user="user: root"; fi
body=$(head -c "$body_size" /dev/zero | tr '\0' 'x')

# Throw-away certificate for the TLS listeners (layout T), never stored outside $tmp.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

# --- upstream: nginx, 1 KiB body, HTTP/1.1 --------------------------------------------------
start_upstream_with_status() {  # start_upstream_with_status CPU -> sets up_group
  # stub_status: connections the upstream accepted (how often a proxy opened one)
  start_upstream "$1" "server { listen 127.0.0.1:$st_port; location / { stub_status; } }"
}

# --- monolake: one server on a plain listener (h2c by prior knowledge), one on TLS ---------------
start_monolake() {  # start_monolake CPU -> ml_group
  local name port tls
  cat > "$tmp/monolake.toml" <<EOF
[log]
access_log = "off"
[runtime]
worker_threads = 1
drain_timeout_sec = 5
EOF
  for name in plain tls; do
    if [[ $name == plain ]]; then port=$ml_port; tls=""; else
      port=$ml_tls; tls="tls = { chain = \"$tmp/cert.pem\", key = \"$tmp/key.pem\" }"; fi
    cat >> "$tmp/monolake.toml" <<EOF
[servers.$name]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$port" }
upstream_http_version = "http11"
upstream_max_idle_connections = $KEEPALIVE
$tls
[[servers.$name.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:$up_port" } }]
[[servers.$name.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:$up_port" } }]
EOF
  done
  taskset -c "$1" "$monolake" -c "$tmp/monolake.toml" --log-level warn >"$tmp/monolake.log" 2>&1 &
  ml_group=$!
  started+=("$ml_group")
  wait_port "$ml_port" "$ml_group"
  wait_port "$ml_tls" "$ml_group"
}

# --- nginx as the proxy -------------------------------------------------------------------------
start_nginx_proxy() {  # start_nginx_proxy CPU -> ng_group
  mkdir -p "$tmp/proxy"
  cat > "$tmp/proxy/nginx.conf" <<EOF
$user_line
worker_processes 1;
worker_rlimit_nofile 17408;
daemon off;
pid $tmp/proxy/nginx.pid;
error_log $tmp/proxy/error.log warn;
events { worker_connections 16384; }
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
    keepalive $KEEPALIVE;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$ng_port http2 backlog=4096;
    listen 127.0.0.1:$ng_tls ssl http2 backlog=4096;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
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

# --- h2o ----------------------------------------------------------------------------------------
start_h2o() {  # start_h2o CPU -> ho_group: the h2o process (its one child, a perl backtrace
  # annotator reading its stderr, is idle; OCSP fetching, another child, is turned off)
  cat > "$tmp/h2o.conf" <<EOF
$h2o_user
num-threads: 1
pid-file: $tmp/h2o.pid
error-log: $tmp/h2o-error.log
listen:
  host: 127.0.0.1
  port: $ho_port
listen:
  host: 127.0.0.1
  port: $ho_tls
  ssl:
    certificate-file: $tmp/cert.pem
    key-file: $tmp/key.pem
    minimum-version: TLSv1.2
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:$up_port/
EOF
  taskset -c "$1" h2o -c "$tmp/h2o.conf" >"$tmp/h2o.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  wait_port "$ho_port" "$pid"
  wait_port "$ho_tls" "$pid"
  ho_group=$pid
  regroup "$pid" "$ho_group"
}

show_logs() {
  local f
  for f in "$tmp/monolake.log" "$tmp/proxy/error.log" "$tmp/h2o-error.log" "$tmp/h2o.log"; do
    [[ -s $f ]] && { echo "--- $f" >&2; tail -n 10 "$f" >&2; }
  done
  return 0
}
check_body() {  # check_body URL: nghttp (h2, prior knowledge or ALPN) must get 200 + the 1 KiB body
  local out
  if out=$(timeout 10 nghttp "$1" 2>&1 >"$tmp/got") && cmp -s "$tmp/got" <(printf %s "$body") &&
     timeout 10 nghttp -v "$1" 2>&1 | grep -q ':status: 200'; then
    return 0
  fi
  echo "h2.sh: $1 did not return 200 and the 1 KiB body over HTTP/2 ($(wc -c < "$tmp/got") bytes); nghttp said: $out" >&2
  show_logs
  return 1
}

start_upstream_with_status "$cpu_one"
start_monolake "$cpu_one"
start_nginx_proxy "$cpu_one"
start_h2o "$cpu_one"
for url in "http://127.0.0.1:$ml_port/" "http://127.0.0.1:$ng_port/" "http://127.0.0.1:$ho_port/" \
           "https://127.0.0.1:$ml_tls/a/b?c=d" "https://127.0.0.1:$ng_tls/" "https://127.0.0.1:$ho_tls/"; do
  check_body "$url"
done

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
up_accepts() {  # connections the upstream nginx has accepted so far (this request's included)
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$st_port"
  printf 'GET / HTTP/1.0\r\nHost: status\r\n\r\n' >&3
  line=$(grep -A1 '^server accepts' <&3 | tail -n1)
  exec 3<&-
  awk '{ print $1 }' <<<"$line"
}
times_ns() {  # the children's user + system time from bash's `times` output (its 2nd line)
  sed -n 2p <<<"$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%.0f\n", t * 1e9 }'
}

# parse_h2load: h2load's summary -> "done succeeded failed errored timeout s2xx s3xx s4xx s5xx
# seconds mean_request_us"; missing lines give nothing (the caller treats that as a failure).
parse_h2load() {
  awk '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v }
    /^finished in/ { secs = $3; sub(/s,$/, "", secs); if (secs ~ /m$/) { sub(/m$/, "", secs); secs /= 1000 } ok1 = 1 }
    /^requests:/ { d = $6; s = $8; f = $10; e = $12; t = $14; ok2 = 1 }
    /^status codes:/ { a = $3; b = $5; c = $7; x = $9; ok3 = 1 }
    /^time for request:/ { m = us($6) }
    END { if (ok1 && ok2 && ok3) print d, s, f, e, t, a, b, c, x, secs, m }' <<<"$1"
}

# run_load LAYOUT ROUND NAME URL LOAD_CPU EXTRA_H2LOAD_ARGS [PIDS...]: one h2load run; one line
# to results.tsv. Records the proxy's CPU (PIDS), the upstream's and h2load's own.
run_load() {
  local layout=$1 round=$2 name=$3 url=$4 load_cpu=$5 extra=$6
  shift 6
  local ns0=0 ns1=0 t0=0 t1=0 u0 u1 out rc p parsed
  if (( $# )); then ns0=$(sched_ns "$@"); t0=$(stat_ticks "$@"); fi
  u0=$(sched_ns $up_group)
  local a0 a1
  a0=$(up_accepts)
  # shellcheck disable=SC2086
  out=$(timeout $((duration + 30)) taskset -c "$load_cpu" h2load -t1 -c"$conns" $extra \
        -D "$duration" "$url" 2>&1; rc=$?; echo "RC $rc"; times)
  u1=$(sched_ns $up_group)
  a1=$(up_accepts)
  rc=$(sed -n 's/^RC //p' <<<"$out")
  local load_ns
  load_ns=$(times_ns "$(sed -n '/^RC /,$p' <<<"$out" | tail -n +2)")
  out=$(sed '/^RC /,$d' <<<"$out")
  sleep 0.3  # let the proxy finish closing the connections
  for p in "$@"; do
    if ! kill -0 "$p" 2>/dev/null || [[ $(proc_state "$p") == Z ]]; then
      { echo "h2.sh: $name (pid $p) died during $layout round $round; h2load said:"; echo "$out"; } >&2
      show_logs
      exit 1
    fi
  done
  if (( $# )); then ns1=$(sched_ns "$@"); t1=$(stat_ticks "$@"); fi
  parsed=$(parse_h2load "$out")
  if [[ $rc != 0 || -z $parsed ]]; then
    echo "h2.sh: h2load against $name ($url) failed (status $rc):" >&2
    echo "$out" >&2
    show_logs
    exit 1
  fi
  local done_ ok failed errored tmo s2 s3 s4 s5 secs mean bad
  read -r done_ ok failed errored tmo s2 s3 s4 s5 secs mean <<<"$parsed"
  bad=$((failed + errored + tmo + s3 + s4 + s5))
  if (( bad || done_ == 0 )); then
    { echo "h2.sh: $layout round $round: problems through $name (failed $failed, errored $errored, timeout $tmo, 3xx $s3, 4xx $s4, 5xx $s5, done $done_); h2load said:"
      echo "$out"; } | tee -a "$tmp/errors.txt" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$layout" "$round" "$name" "$s2" \
    "$secs" $((ns1 - ns0)) $(((t1 - t0) * 1000000000 / hz)) $((u1 - u0)) "$load_ns" "$bad" \
    "$mean" "$done_" $((a1 - a0 - 1)) >> "$tmp/results.tsv"
  awk -v l="$layout" -v r="$round" -v n="$name" -v q="$s2" -v s="$secs" -v ns=$((ns1 - ns0)) \
      -v all=$((ns1 - ns0 + u1 - u0 + load_ns)) -v m="$mean" -v e="$bad" -v c=$((a1 - a0 - 1)) 'BEGIN {
    printf "  %s r%d %-8s %8.0f req/s", l, r, n, q / s
    if (n != "direct") printf "  proxy CPU %5.1f%% %6.2f us/req", 100 * ns / 1e9 / s, (q ? ns / 1e3 / q : 0)
    else printf "  %-31s", ""
    printf "  all CPU %6.2f us/req  mean %7.2f ms  upstream conns %d  bad %d\n", (q ? all / 1e3 / q : 0), m / 1000, c, e
  }' >&2
}

: > "$tmp/results.tsv"
targets=(monolake nginx h2o direct)
h2args="-m$streams"
echo "monolake $monolake (pid $ml_group), nginx proxy (pids $ng_group), h2o (pids $ho_group), upstream nginx (pids $up_group)" >&2
for layout in $layouts; do
  case $layout in
    C) load_cpu=$cpu_one ;;
    A|T) load_cpu=$cpu_other ;;
  esac
  for p in $up_group; do taskset -a -p -c "$load_cpu" "$p" >/dev/null; done
  if [[ $layout == T ]]; then
    ml_url="https://127.0.0.1:$ml_tls/"; ng_url="https://127.0.0.1:$ng_tls/"; ho_url="https://127.0.0.1:$ho_tls/"
    order=(monolake nginx h2o)
  else
    ml_url="http://127.0.0.1:$ml_port/"; ng_url="http://127.0.0.1:$ng_port/"; ho_url="http://127.0.0.1:$ho_port/"
    order=("${targets[@]}")
  fi
  up_url="http://127.0.0.1:$up_port/"
  echo "== layout $layout: proxies on CPU $cpu_one, h2load and upstream on CPU $load_cpu; warm-up (1 s each), then $rounds rounds of ${duration} s" >&2
  for url in "$ml_url" "$ng_url" "$ho_url"; do
    timeout 30 taskset -c "$load_cpu" h2load -t1 -c"$conns" $h2args -D 1 "$url" >/dev/null
  done
  [[ $layout == T ]] || timeout 30 taskset -c "$load_cpu" h2load --h1 -t1 -c"$conns" -m1 -D 1 "$up_url" >/dev/null
  n=${#order[@]}
  for r in $(seq "$rounds"); do
    for i in $(seq 0 $((n - 1))); do
      name=${order[$(( (i + r - 1) % n ))]}
      case $name in
        monolake) run_load "$layout" "$r" monolake "$ml_url" "$load_cpu" "$h2args" $ml_group ;;
        nginx) run_load "$layout" "$r" nginx "$ng_url" "$load_cpu" "$h2args" $ng_group ;;
        h2o) run_load "$layout" "$r" h2o "$ho_url" "$load_cpu" "$h2args" $ho_group ;;
        direct) run_load "$layout" "$r" direct "$up_url" "$load_cpu" "--h1 -m1" ;;
      esac
    done
  done
done

warnings=$(grep -c -E 'WARN|ERROR' "$tmp/monolake.log" || true)
(( warnings == 0 )) || echo "h2.sh: monolake logged $warnings warnings/errors, e.g.: $(grep -m1 -E 'WARN|ERROR' "$tmp/monolake.log")" >&2
for f in "$tmp/proxy/error.log" "$tmp/upstream/error.log" "$tmp/h2o-error.log"; do
  [[ -s $f ]] && echo "h2.sh: $f: $(wc -l < "$f") lines, e.g.: $(head -n1 "$f")" >&2
done

$py - "$tmp/results.tsv" "$rounds" "$duration" "$conns" "$streams" "$cpu_one" "$cpu_other" "$layouts" <<'PY'
import statistics, sys
path, rounds, duration, conns, streams, cpu_one, cpu_other, layouts = sys.argv[1:]
layouts = layouts.split()
rows = []
for line in open(path):
    layout, rnd, name, reqs, secs, ns, stat_ns, up_ns, load_ns, bad, mean_us, done, upconns = line.rstrip("\n").split("\t")
    s = float(secs)
    reqs = int(reqs)
    all_ns = int(ns) + int(up_ns) + int(load_ns)
    nan = float("nan")
    rows.append(dict(layout=layout, name=name, rps=reqs / s, reqs=reqs,
                     all_us_req=all_ns / 1e3 / reqs if reqs else nan,
                     all_busy=100 * all_ns / 1e9 / s,
                     us_req=int(ns) / 1e3 / reqs if reqs else nan,
                     stat_us_req=int(stat_ns) / 1e3 / reqs if reqs else nan,
                     busy=100 * int(ns) / 1e9 / s, bad=int(bad), mean_ms=float(mean_us) / 1e3,
                     upconn_k=1000 * int(upconns) / reqs if reqs else nan))
def runs(layout, name):
    return [r for r in rows if r["layout"] == layout and r["name"] == name]
def med(layout, name, key):
    rs = runs(layout, name)
    return statistics.median(r[key] for r in rs) if rs else None
def fmt(v, digits):
    return "" if v is None else f"{v:,.{digits}f}"
def ratio(v, ref):
    return "" if v is None or not ref else f"{v / ref:.2f}"

names = [("monolake", "monolake"), ("nginx", "nginx 1.22"), ("h2o", "h2o 2.2"),
         ("direct", "direct to upstream (h1, -m1)")]
desc = {"C": f"h2load, proxy and upstream all on CPU {cpu_one}, h2c",
        "A": f"proxy alone on CPU {cpu_one}, h2load and upstream on CPU {cpu_other}, h2c (prior knowledge)",
        "T": f"as A over TLS (ALPN h2), {conns} handshakes included per run"}
print(f"\nMedians of {rounds} rounds of {duration} s per target and layout; h2load -t1 -c{conns} -m{streams} -D {duration}, "
      f"GET / of a 1 KiB body; proxies speak HTTP/1.1 keep-alive to one nginx upstream.")
for l in layouts:
    print(f"{l}: {desc[l]}.")
print("Proxy CPU: /proc/PID/task/*/schedstat, all threads (nginx: master + worker; h2o: its process), "
      "per 2xx response. All CPU: proxy + upstream (schedstat) + h2load (rusage) per 2xx response.\n")
print("Upstream conns: connections the upstream accepted (stub_status) per 1,000 responses.\n")
print("| layout | target | req/s | / nginx | proxy CPU µs/req | / nginx | proxy busy | all CPU µs/req | / nginx | mean req time (ms) | upstream conns / 1k req |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for l in layouts:
    ref_r, ref_c, ref_all = med(l, "nginx", "rps"), med(l, "nginx", "us_req"), med(l, "nginx", "all_us_req")
    for name, label in names:
        if not runs(l, name):
            continue
        rps, allc, mean = med(l, name, "rps"), med(l, name, "all_us_req"), med(l, name, "mean_ms")
        upc = med(l, name, "upconn_k")
        cpu = med(l, name, "us_req") if name != "direct" else None
        busy = med(l, name, "busy") if name != "direct" else None
        print(f"| {l} | {label} | {fmt(rps, 0)} | {ratio(rps, ref_r)} | {fmt(cpu, 2)} | {ratio(cpu, ref_c)} | "
              f"{fmt(busy, 1) + ' %' if busy is not None else ''} | {fmt(allc, 2)} | {ratio(allc, ref_all)} | {fmt(mean, 2)} | {fmt(upc, 1)} |")
if "C" in layouts:
    shares = ", ".join(f"{n} {fmt(med('C', n, 'all_busy'), 0)} %" for n, _ in names if runs("C", n))
    print(f"\nIn C the processes above got {shares} of CPU {cpu_one} (medians); the rest went to other tasks.")

print("\nEvery round, in run order:")
for layout in layouts:
    for name, _ in names:
        rs = runs(layout, name)
        if not rs:
            continue
        print(f"  {layout} {name:8s} req/s: " + ", ".join(fmt(r["rps"], 0) for r in rs))
        if name != "direct":
            print(f"  {layout} {name:8s} proxy CPU µs/req: " + ", ".join(fmt(r["us_req"], 2) for r in rs))
        print(f"  {layout} {name:8s} all CPU µs/req: " + ", ".join(fmt(r["all_us_req"], 2) for r in rs))
        print(f"  {layout} {name:8s} upstream conns / 1k req: " + ", ".join(fmt(r["upconn_k"], 1) for r in rs))
for layout in layouts:
    for name, _ in names[:3]:
        a, b = med(layout, name, "us_req"), med(layout, name, "stat_us_req")
        if a and b and abs(a - b) > 0.1 * max(a, b):
            print(f"\nnote: {layout} {name}: schedstat gives {a:.2f} µs/req, /proc/PID/stat utime+stime {b:.2f} µs/req "
                  f"(threads that exited during rounds are only in the latter)")
bad = sum(r["bad"] for r in rows)
if bad:
    for layout in layouts:
        for name, _ in names:
            e = sum(r["bad"] for r in runs(layout, name))
            if e:
                print(f"\nwarning: {layout} {name}: {e} failed/errored/timed-out requests or non-2xx responses in total")
else:
    print("\nNo failed, errored or timed-out requests and no non-2xx responses in any run.")
PY
if [[ -s $tmp/errors.txt ]]; then
  echo; echo "h2load output of the runs with problems:"; cat "$tmp/errors.txt"
fi
