#!/usr/bin/env bash
# End-to-end Thrift comparison: the C++ Apache Thrift client (tests/thrift/calc_client) calling
# the C++ Apache Thrift server (tests/thrift/calc_server, TThreadedServer, framed + binary)
# directly, and through monolake (proxy_type "thrift", one worker), in one run with alternating
# rounds; medians reported as a markdown table.
#
#   bench/e2e/thrift.sh                          # builds monolake and the peers (--config=opt)
#   MONOLAKE=... CALC_SERVER=... CALC_CLIENT=... bench/e2e/thrift.sh   # use these, build nothing
#
# Layout: monolake alone on CPU_ONE; the client and the server on CPU_OTHER. Each round runs
# the client once per target ("direct", "monolake"; the order alternates every round) for a
# fixed number of calls of `add` and reports calls/s (the client's own count and clock; every
# reply's sequence id and value is checked, a run with any error fails the script). The
# proxy's CPU per call is the sum of the first field (ns on CPU) of /proc/PID/task/*/schedstat
# over monolake's threads, read before and after its run, divided by the calls.
# Two workloads:
#   rpc:       CONNS_RPC connections, one call at a time each (the generated client's pattern)
#   pipelined: CONNS_PIPE connections, DEPTH calls in flight on each (sent before replies read)
#
# Environment (defaults in brackets):
#   ROUNDS [5]  CALLS_RPC [60000]  CALLS_PIPE [300000]  CONNS_RPC [8]  CONNS_PIPE [4]
#   DEPTH [32]  CPU_ONE [1]  CPU_OTHER [0]
# Needs: taskset, /usr/bin/python3. Everything binds 127.0.0.1 on free ports; the two servers
# started are stopped by PID on exit (TERM, then KILL); every client run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${ROUNDS:-5}
calls_rpc=${CALLS_RPC:-60000}
calls_pipe=${CALLS_PIPE:-300000}
conns_rpc=${CONNS_RPC:-8}
conns_pipe=${CONNS_PIPE:-4}
depth=${DEPTH:-32}
cpu_one=${CPU_ONE:-1}
cpu_other=${CPU_OTHER:-0}
py=/usr/bin/python3
bench_name=thrift.sh
source "$(dirname "$0")/lib.sh"  # free_ports, wait_port

tmp=$(mktemp -d /tmp/monolake-thrift-bench.XXXXXX)
if [[ -n "${MONOLAKE:-}" && -n "${CALC_SERVER:-}" && -n "${CALC_CLIENT:-}" ]]; then
  monolake=$MONOLAKE calc_server=$CALC_SERVER calc_client=$CALC_CLIENT
else
  bazel build --config=opt //proxy:monolake //tests/thrift:calc_server //tests/thrift:calc_client >&2
  bin=$(bazel info --config=opt bazel-bin 2>/dev/null)
  # Copy at once: bazel-bin moves when something else builds with another configuration.
  cp "$bin/proxy/monolake" "$bin/tests/thrift/calc_server" "$bin/tests/thrift/calc_client" "$tmp/"
  monolake=$tmp/monolake calc_server=$tmp/calc_server calc_client=$tmp/calc_client
fi

pids=()
cleanup() {
  local p i
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r up_port ml_port < <(free_ports 2)


taskset -c "$cpu_other" "$calc_server" --port "$up_port" >"$tmp/server.out" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_port "$up_port" "$server_pid"

cat >"$tmp/monolake.toml" <<EOF
[log]
access_log = "off"
[runtime]
worker_threads = 1
drain_timeout_sec = 5
[servers.bench]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:$ml_port" }
[servers.bench.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:$up_port" } }]
EOF
taskset -c "$cpu_one" "$monolake" -c "$tmp/monolake.toml" --log-level warn >"$tmp/ml.out" 2>&1 &
ml_pid=$!
pids+=("$ml_pid")
wait_port "$ml_port" "$ml_pid"

sched_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

run() {  # run TARGET WORKLOAD -> "calls_per_sec proxy_ns_per_call"
  local port=$up_port calls conns d out before after rate
  [[ $1 == monolake ]] && port=$ml_port
  if [[ $2 == rpc ]]; then calls=$calls_rpc conns=$conns_rpc d=1; else
    calls=$calls_pipe conns=$conns_pipe d=$depth; fi
  before=$(sched_ns "$ml_pid")
  out=$(timeout 120 taskset -c "$cpu_other" "$calc_client" --port "$port" --mode pipeline \
    --calls "$calls" --threads "$conns" --depth "$d") || {
    echo "thrift.sh: $1 $2 failed: $out" >&2
    exit 1
  }
  after=$(sched_ns "$ml_pid")
  rate=$(sed -n 's/.*calls_per_sec=\([0-9.]*\).*/\1/p' <<<"$out")
  echo "$rate $(( (after - before) / calls ))"
}

# Warm-up: one short run per target.
for t in direct monolake; do
  timeout 60 "$calc_client" --port "$([[ $t == direct ]] && echo "$up_port" || echo "$ml_port")" \
    --mode pipeline --calls 5000 --threads 2 --depth 8 >/dev/null
done

results=$tmp/results
: >"$results"
for r in $(seq "$rounds"); do
  for w in rpc pipelined; do
    if (( r % 2 )); then order="direct monolake"; else order="monolake direct"; fi
    for t in $order; do
      read -r rate ns < <(run "$t" "$w")
      echo "$w $t $rate $ns" >>"$results"
      echo "round $r $w $t: $rate calls/s, monolake CPU $ns ns/call" >&2
    done
  done
done

$py - "$results" "$rounds" "$conns_rpc" "$conns_pipe" "$depth" "$cpu_one" "$cpu_other" <<'EOF'
import statistics, sys
path, rounds, conns_rpc, conns_pipe, depth, cpu_one, cpu_other = sys.argv[1:]
rows = {}
for line in open(path):
    w, t, rate, ns = line.split()
    rows.setdefault((w, t), []).append((float(rate), int(ns)))
print(f"\n{rounds} rounds, medians. monolake on CPU {cpu_one}; client and server on CPU {cpu_other}.")
print("| workload | direct calls/s | via monolake calls/s | ratio | monolake CPU per call |")
print("|---|---|---|---|---|")
for w, label in (("rpc", f"rpc: {conns_rpc} connections, 1 call in flight each"),
                 ("pipelined", f"pipelined: {conns_pipe} connections, {depth} calls in flight each")):
    d = statistics.median(r for r, _ in rows[(w, "direct")])
    m = statistics.median(r for r, _ in rows[(w, "monolake")])
    ns = statistics.median(n for _, n in rows[(w, "monolake")])
    print(f"| {label} | {d:,.0f} | {m:,.0f} | {m / d:.2f} | {ns / 1000:.2f} µs |")
EOF
