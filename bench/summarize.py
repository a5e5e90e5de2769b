#!/usr/bin/env python3
"""Median and spread (min..max) per benchmark from Google Benchmark JSON with repetitions.

  http_bench --benchmark_repetitions=5 --benchmark_format=json > out.json
  bench/summarize.py out.json
"""
import json
import statistics
import sys

runs = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type") != "iteration":
        continue
    runs.setdefault(b["run_name"], []).append(b)
print("| benchmark | median ns | min..max ns | median rate |")
print("|---|---|---|---|")
for name, rs in runs.items():
    ns = sorted(r["cpu_time"] for r in rs)  # time_unit is ns for every benchmark here
    med = statistics.median(ns)
    rate = ""
    if "bytes_per_second" in rs[0]:
        rate = "%.0f MB/s" % (statistics.median(r["bytes_per_second"] for r in rs) / 1e6)
    elif "items_per_second" in rs[0]:
        rate = "%.1f M items/s" % (statistics.median(r["items_per_second"] for r in rs) / 1e6)
    print("| `%s` | %.1f | %.1f..%.1f | %s |" % (name, med, ns[0], ns[-1], rate))
