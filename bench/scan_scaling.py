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
from ns_exporter.procfs.activity import ACCOUNTING_BOUND
from ns_exporter.scanner import Scanner, ScanOptions


@dataclass(frozen=True, slots=True)
class Row:
    shape: b.PopulationShape
    processes: int  # as seen by the exporter's scan (the population plus the machine's own)
    c_naive: b.Timing  # per walk, medians
    c_lean: b.Timing
    scan: b.Timing  # the exporter's scan in process, warm, population idle since the last
    active: b.Timing  # the same right after every process of the population ran
    active_read: int  # processes whose links that scan read
    first_scan: b.Timing  # its first scan (every process new)
    lsns: b.Timing
    cpu: b.CpuPerScan  # the running exporter, from outside
    rss_kb: int
    hwm_kb: int


def measure(helpers: Path, shape: b.PopulationShape, args: argparse.Namespace) -> Row:
    with b.population(helpers, shape) as pop:
        b.log(f"{shape.describe()}: started in {pop.start_seconds:.1f} s")
        scanner = Scanner(ScanOptions())
        spacer = b.Spacer(ACCOUNTING_BOUND + 0.2)
        _, first = b.timed(scanner.scan)
        spacer.done()
        naive, lean, idle, active = [], [], [], []
        processes = active_read = 0
        for _ in range(args.repeats):  # interleaved, so machine noise hits all alike
            naive.append(b.c_walk(helpers, "naive")[1])
            lean.append(b.c_walk(helpers, "lean")[1])
            spacer.wait()
            snapshot, timing = b.timed(scanner.scan)
            idle.append(timing)
            processes = snapshot.stats.processes_scanned
            pop.wake()  # every member runs once: all their links must be read again
            _, timing = b.timed(scanner.scan)
            spacer.done()
            active.append(timing)
            active_read = scanner.links_read
        del scanner, snapshot
        lsns = [b.lsns_walk() for _ in range(args.lsns_repeats)]
        with b.exporter(args.exporter_interval) as running:
            cpu = b.cpu_per_scan(running, args.cpu_scans)
            rss, hwm = running.memory_kb()
        return Row(
            shape=shape,
            processes=processes,
            c_naive=b.median_timing(naive),
            c_lean=b.median_timing(lean),
            scan=b.median_timing(idle),
            active=b.median_timing(active),
            active_read=active_read,
            first_scan=first,
            lsns=b.median_timing(lsns),
            cpu=cpu,
            rss_kb=rss,
            hwm_kb=hwm,
        )


def report(row: Row) -> None:
    n = row.processes
    print(f"\n== {row.shape.describe()} ({n:,} processes scanned)")
    print(f"  {'':40s} {'wall/walk':>11s} {'wall/process':>12s} {'CPU/process':>12s}")
    for label, timing in (
        ("C reference (naive: stat+stat+8)", row.c_naive),
        ("C lean (clock + 7 readlinks)", row.c_lean),
        ("exporter scan, idle population", row.scan),
        (f"exporter scan, all active ({row.active_read:,} read)", row.active),
        ("exporter scan, first (all new)", row.first_scan),
        ("lsns", row.lsns),
    ):
        print(
            f"  {label:40s} {b.ms(timing.wall):>11s} {b.us(timing.wall / n):>12s} "
            f"{b.us(timing.cpu / n):>12s}"
        )
    print(
        f"  exporter/C: idle {ratio(row.scan, row.c_naive)}, all active "
        f"{ratio(row.active, row.c_naive)}   exporter/lsns: idle "
        f"{row.scan.wall / row.lsns.wall:.3f}, all active {row.active.wall / row.lsns.wall:.3f}"
    )
    print(
        f"  running exporter (interval {row.cpu.interval}): {row.cpu.seconds * 1e3:.0f} ms CPU "
        f"per scan over {row.cpu.scans} scans ({row.cpu.seconds / n * 1e6:.1f} us per process, "
        f"rendering /metrics included; its scans took {row.cpu.scan_seconds * 1e3:.0f} ms), "
        f"RSS {row.rss_kb / 1024:.1f} MB, peak {row.hwm_kb / 1024:.1f} MB"
    )


def ratio(exporter: b.Timing, reference: b.Timing) -> str:
    return f"{exporter.wall / reference.wall:.2f} wall ({exporter.cpu / reference.cpu:.2f} CPU)"


def summary(rows: list[Row]) -> None:
    print("\n== scaling: time per process in us, wall (CPU); flat columns mean linear growth")
    print(
        f"  {'processes':>10s} {'C naive':>13s} {'exporter idle':>13s} {'all active':>13s} "
        f"{'idle/C':>11s} {'active/C':>11s} {'lsns':>15s} {'CPU/scan':>9s} {'RSS MB':>7s}"
    )
    for row in rows:
        n = row.processes
        print(
            f"  {n:>10,} {per(row.c_naive, n):>13s} {per(row.scan, n):>13s} "
            f"{per(row.active, n):>13s} {ratios(row.scan, row.c_naive):>11s} "
            f"{ratios(row.active, row.c_naive):>11s} {per(row.lsns, n):>15s} "
            f"{row.cpu.seconds:>8.3f}s {row.rss_kb / 1024:>7.1f}"
        )
    if len(rows) > 1:
        first = rows[0]
        growth = ", ".join(
            f"{r.processes:,}: idle {relative(r.scan, r.processes, first.scan, first.processes)}"
            f", all active {relative(r.active, r.processes, first.active, first.processes)}"
            for r in rows[1:]
        )
        print(f"  CPU time per process relative to {first.processes:,} processes: {growth}")


def per(timing: b.Timing, n: int) -> str:
    return f"{timing.wall / n * 1e6:.1f} ({timing.cpu / n * 1e6:.1f})"


def ratios(exporter: b.Timing, reference: b.Timing) -> str:
    return f"{exporter.wall / reference.wall:.2f} ({exporter.cpu / reference.cpu:.2f})"


def relative(timing: b.Timing, n: int, base: b.Timing, base_n: int) -> str:
    return f"{(timing.cpu / n) / (base.cpu / base_n):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--populations", default="1000,10000,30000")
    parser.add_argument("--per-group", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved C/exporter walks")
    parser.add_argument("--lsns-repeats", type=int, default=1)
    parser.add_argument("--cpu-scans", type=int, default=5, help="scans in the CPU window")
    parser.add_argument(
        "--exporter-interval", default="5s", help="--scan.interval of the running exporter"
    )
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
