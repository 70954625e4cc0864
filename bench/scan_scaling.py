#!/usr/bin/env python3
"""Scan cost against the kernel's floor, at several population sizes (issue 9).

For each population (default 1,000, 10,000 and 30,000 processes, 20 per group, each group in
its own uts, ipc and net namespace) created and removed by this script, it times in one run:

- the C reference walker (naive: stat /proc/PID, read /proc/PID/stat, readlink the eight
  ns links, by path) and the C lean walker (the exporter's per-process work, in C);
- the exporter's scan, in process, warm (Scanner.scan(), the first scan is reported apart);
- lsns on the same population;
- a real `python -m ns_exporter` scanning back to back (--scan.interval=100ms): its CPU
  seconds per scan (utime+stime from /proc/PID/stat) and its resident memory.

It prints the time per process of each, the ratios exporter/C and exporter/lsns, and how the
exporter's time per process changes with the population (flat = linear scaling).
Run as root: python3 bench/scan_scaling.py [--populations 1000,10000,30000]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as b  # the bench directory is the script's own

from ns_exporter import logs
from ns_exporter.scanner import Scanner, ScanOptions


@dataclass(frozen=True, slots=True)
class Row:
    shape: b.PopulationShape
    processes: int  # as seen by the exporter's scan (the population plus the machine's own)
    c_naive: b.Timing  # per walk, medians
    c_lean: b.Timing
    scan: b.Timing  # the exporter's scan in process, warm
    first_scan: b.Timing  # its first scan (every process new)
    lsns: b.Timing
    cpu: b.CpuPerScan  # the running exporter, from outside
    rss_kb: int
    hwm_kb: int


def measure(helpers: Path, shape: b.PopulationShape, args: argparse.Namespace) -> Row:
    with b.population(helpers, shape) as pop:
        b.log(f"{shape.describe()}: started in {pop.start_seconds:.1f} s")
        scanner = Scanner(ScanOptions())
        _, first = b.timed(scanner.scan)
        naive, lean, scans = [], [], []
        processes = 0
        for _ in range(args.repeats):  # interleaved, so machine noise hits all alike
            naive.append(b.c_walk(helpers, "naive")[1])
            lean.append(b.c_walk(helpers, "lean")[1])
            snapshot, timing = b.timed(scanner.scan)
            scans.append(timing)
            processes = snapshot.stats.processes_scanned
        del scanner, snapshot
        lsns = [b.lsns_walk() for _ in range(args.lsns_repeats)]
        with b.exporter("100ms") as running:
            cpu = b.cpu_per_scan(running, args.cpu_scans)
            rss, hwm = running.memory_kb()
        return Row(
            shape=shape,
            processes=processes,
            c_naive=b.median_timing(naive),
            c_lean=b.median_timing(lean),
            scan=b.median_timing(scans),
            first_scan=first,
            lsns=b.median_timing(lsns),
            cpu=cpu,
            rss_kb=rss,
            hwm_kb=hwm,
        )


def report(row: Row) -> None:
    n = row.processes
    print(f"\n== {row.shape.describe()} ({n:,} processes scanned)")
    print(f"  {'':34s} {'wall/walk':>12s} {'wall/process':>12s} {'CPU/process':>12s}")
    for label, timing in (
        ("C reference (naive: stat+stat+8)", row.c_naive),
        ("C lean (exporter's work in C)", row.c_lean),
        ("exporter scan, warm", row.scan),
        ("exporter scan, first (all new)", row.first_scan),
        ("lsns", row.lsns),
    ):
        print(
            f"  {label:34s} {b.ms(timing.wall):>12s} {b.us(timing.wall / n):>12s} "
            f"{b.us(timing.cpu / n):>12s}"
        )
    print(
        f"  exporter/C: wall {row.scan.wall / row.c_naive.wall:.2f}, CPU "
        f"{row.scan.cpu / row.c_naive.cpu:.2f}   exporter/C-lean: wall "
        f"{row.scan.wall / row.c_lean.wall:.2f}   exporter/lsns: wall "
        f"{row.scan.wall / row.lsns.wall:.3f} (lsns {row.lsns.wall / row.scan.wall:.1f}x slower)"
    )
    print(
        f"  running exporter: {row.cpu.seconds * 1e3:.0f} ms CPU per scan over {row.cpu.scans} "
        f"scans ({row.cpu.seconds / n * 1e6:.1f} us per process; includes rendering /metrics; "
        f"its scans took {row.cpu.scan_seconds * 1e3:.0f} ms), RSS {row.rss_kb / 1024:.1f} MB, "
        f"peak {row.hwm_kb / 1024:.1f} MB"
    )


def summary(rows: list[Row]) -> None:
    print("\n== scaling (time per process in us; flat columns mean linear growth)")
    print(
        f"  {'processes':>10s} {'C naive':>8s} {'exporter':>8s} {'exp/C':>6s} "
        f"{'exp/C cpu':>9s} {'lsns':>8s} {'exp/lsns':>8s} {'CPU/scan':>9s} {'RSS MB':>7s}"
    )
    for row in rows:
        n = row.processes
        print(
            f"  {n:>10,} {row.c_naive.wall / n * 1e6:>8.1f} {row.scan.wall / n * 1e6:>8.1f} "
            f"{row.scan.wall / row.c_naive.wall:>6.2f} {row.scan.cpu / row.c_naive.cpu:>9.2f} "
            f"{row.lsns.wall / n * 1e6:>8.1f} {row.scan.wall / row.lsns.wall:>8.3f} "
            f"{row.cpu.seconds:>8.3f}s {row.rss_kb / 1024:>7.1f}"
        )
    if len(rows) > 1:
        base = rows[0].scan.wall / rows[0].processes
        growth = ", ".join(
            f"{r.processes:,}: {r.scan.wall / r.processes / base:.2f}" for r in rows[1:]
        )
        print(f"  exporter wall time per process relative to {rows[0].processes:,}: {growth}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--populations", default="1000,10000,30000")
    parser.add_argument("--per-group", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved C/exporter walks")
    parser.add_argument("--lsns-repeats", type=int, default=1)
    parser.add_argument("--cpu-scans", type=int, default=8, help="scans in the CPU window")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("scan_scaling: run as root (it creates namespaces)", file=sys.stderr)
        return 2
    logs.configure("error", "logfmt", sys.stderr)
    b.stop_on_sigterm()
    rows = []
    with b.compiled_helpers() as helpers:
        for size in (int(x) for x in args.populations.split(",")):
            shape = b.PopulationShape(size, max(1, size // args.per_group))
            why_not = b.room_for(shape.groups * shape.per_group)
            if why_not:
                print(f"\n== {shape.describe()}: skipped, {why_not}")
                continue
            row = measure(helpers, shape, args)
            report(row)
            rows.append(row)
            b.settle()
    summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
