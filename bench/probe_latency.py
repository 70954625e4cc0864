#!/usr/bin/env python3
"""Probe latency per module against `unshare --fork --pid --mount-proc true`, in one run.

Measures what a /probe request waits for: ProbeRunner.run() with a warm fork server (the
exporter starts it once). The reference command is timed the same way (wall clock around
one subprocess run), interleaved with the probes so that both see the same machine load.

    python3 bench/probe_latency.py [--rounds 200] [--modules pid,net] [--json FILE]

Needs root (the reference command and the probes both create namespaces). Target: the pid
probe's median within 3x of the reference's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from ns_exporter.probe.modules import MODULE_NAMES
from ns_exporter.probe.runner import ProbeRunner

REFERENCE = ["unshare", "--fork", "--pid", "--mount-proc", "true"]
TARGET_RATIO = 3.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def time_reference() -> float:
    started = time.perf_counter()
    subprocess.run(REFERENCE, check=True)
    return time.perf_counter() - started


def time_probe(runner: ProbeRunner, module: str) -> float:
    started = time.perf_counter()
    result = runner.run(module, 5.0)
    took = time.perf_counter() - started
    if not result.success:
        raise SystemExit(
            f"probe {module} failed: {result.failure_reason}\n" + "\n".join(result.log)
        )
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="samples per module")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured runs per module")
    parser.add_argument("--modules", default=",".join(MODULE_NAMES))
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: the probes and the reference create namespaces", file=sys.stderr)
        return 2
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    modules = [m for m in args.modules.split(",") if m]
    samples: dict[str, list[float]] = {"reference": [], **{m: [] for m in modules}}
    with ProbeRunner() as runner:
        for _ in range(args.warmup):
            time_reference()
            for module in modules:
                time_probe(runner, module)
        for _ in range(args.rounds):  # interleaved: every round sees the same load
            samples["reference"].append(time_reference())
            for module in modules:
                samples[module].append(time_probe(runner, module))

    ref_median = statistics.median(samples["reference"])
    figures = {}
    print(f"{'':<10} {'median ms':>10} {'p95 ms':>8} {'x reference':>12}   ({args.rounds} rounds)")
    for name, values in samples.items():
        median, p95 = statistics.median(values), percentile(values, 0.95)
        figures[name] = {
            "median_ms": round(median * 1000, 3),
            "p95_ms": round(p95 * 1000, 3),
            "ratio": round(median / ref_median, 2),
        }
        label = "unshare" if name == "reference" else name
        print(
            f"{label:<10} {median * 1000:>10.2f} {p95 * 1000:>8.2f} {median / ref_median:>11.2f}x"
        )
    pid_ratio = figures.get("pid", {}).get("ratio")
    if pid_ratio is not None:
        verdict = "within" if pid_ratio <= TARGET_RATIO else "NOT within"
        print(f"pid probe median is {pid_ratio:.2f}x the reference: {verdict} {TARGET_RATIO:g}x")
    print(f"reference: {' '.join(REFERENCE)}; load average {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
