#!/usr/bin/env python3
"""Latency percentile curves of open_loop histograms, several files in one SVG.

    bench/plot_histogram.py -o tail.svg DIR/A-monolake.hist DIR/A-nginx.hist ...

Each input is what `open_loop --histogram FILE` writes: lines `latency_us count`. The x axis
is the percentile on a log scale of 1 / (1 - p), from p50 to p99.99, so the tail gets as much
room as the body; the y axis is the latency in ms (log scale; --linear for a linear one).
A curve is labelled with its file name without the extension.

Uses matplotlib when it is installed (Debian: python3-matplotlib; run with /usr/bin/python3).
Without it, a plain SVG is written by hand: the same curves, simpler axes.
"""

import argparse
import math
import os
import sys

# p50 .. p99.99, evenly spaced in log(1 / (1 - p)): x from 2 to 10,000.
PERCENTILES = [100 * (1 - 1 / (2 * 5000 ** (i / 160))) for i in range(161)]
TICKS = [50, 90, 99, 99.9, 99.99]


def read_histogram(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                rows.append((int(parts[0]), int(parts[1])))
    rows.sort()
    return rows


def percentile_curve(rows):
    """(percentile, latency_ms) pairs: the smallest latency with >= p % of requests at or below."""
    total = sum(count for _, count in rows)
    if total == 0:
        return []
    curve = []
    for p in PERCENTILES:
        rank = max(1, math.ceil(p / 100 * total))
        seen = 0
        for latency_us, count in rows:
            seen += count
            if seen >= rank:
                curve.append((p, latency_us / 1000))
                break
    return curve


def x_of(p):
    return 1 / (1 - p / 100)


def plot_matplotlib(curves, out, linear):
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, curve in curves:
        ax.plot([x_of(p) for p, _ in curve], [ms for _, ms in curve], label=label)
    ax.set_xscale("log")
    if not linear:
        ax.set_yscale("log")
    ax.set_xticks([x_of(p) for p in TICKS])
    ax.set_xticklabels([f"p{p:g}" for p in TICKS])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


def plot_plain(curves, out, linear):
    width, height, left, bottom, top, right = 800, 500, 70, 50, 20, 180
    values = [ms for _, c in curves for _, ms in c if ms > 0] or [1]
    lo, hi = (0, max(values)) if linear else (min(values), max(values))
    if hi <= lo:
        hi = lo * 2 if lo > 0 else 1

    def sx(p):
        return left + (width - left - right) * math.log(x_of(p) / 2) / math.log(x_of(99.99) / 2)

    def sy(ms):
        if linear:
            f = (ms - lo) / (hi - lo)
        else:
            f = math.log(max(ms, lo) / lo) / math.log(hi / lo)
        return height - bottom - (height - bottom - top) * f

    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for p in TICKS:
        svg.append(f'<line x1="{sx(p):.1f}" y1="{top}" x2="{sx(p):.1f}" y2="{height - bottom}" '
                   'stroke="#ddd"/>')
        svg.append(f'<text x="{sx(p):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                   f"p{p:g}</text>")
    for i in range(5):
        ms = lo + (hi - lo) * i / 4 if linear else lo * (hi / lo) ** (i / 4)
        svg.append(f'<line x1="{left}" y1="{sy(ms):.1f}" x2="{width - right}" y2="{sy(ms):.1f}" '
                   'stroke="#ddd"/>')
        svg.append(f'<text x="{left - 6}" y="{sy(ms) + 4:.1f}" text-anchor="end">{ms:.3g}</text>')
    svg.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">'
               "percentile</text>")
    svg.append(f'<text x="16" y="{(top + height - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(top + height - bottom) / 2})">latency (ms)</text>')
    for i, (label, curve) in enumerate(curves):
        color = colors[i % len(colors)]
        points = " ".join(f"{sx(p):.1f},{sy(ms):.1f}" for p, ms in curve)
        svg.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        y = top + 16 + 18 * i
        svg.append(f'<line x1="{width - right + 10}" y1="{y - 4}" x2="{width - right + 30}" '
                   f'y2="{y - 4}" stroke="{color}" stroke-width="2"/>')
        svg.append(f'<text x="{width - right + 36}" y="{y}">{label}</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", required=True, help="the SVG file to write")
    parser.add_argument("--linear", action="store_true", help="linear latency axis")
    parser.add_argument("files", nargs="+", help="open_loop --histogram files")
    args = parser.parse_args()
    curves = []
    for path in args.files:
        curve = percentile_curve(read_histogram(path))
        if not curve:
            print(f"plot_histogram.py: {path} is empty, skipped", file=sys.stderr)
            continue
        curves.append((os.path.splitext(os.path.basename(path))[0], curve))
    if not curves:
        sys.exit("plot_histogram.py: nothing to plot")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("plot_histogram.py: matplotlib is not installed (Debian: python3-matplotlib); "
              "writing a plain SVG", file=sys.stderr)
        plot_plain(curves, args.output, args.linear)
        return
    plot_matplotlib(curves, args.output, args.linear)


if __name__ == "__main__":
    main()
