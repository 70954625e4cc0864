#!/usr/bin/env python3
"""How fast (issue 2): scan time against lsns, memory, scrape latency, on one population.

Creates (and always removes) a synthetic population, by default 10,000 processes in 500
groups, each group in its own uts, ipc and net namespace, then prints:

- the exporter's scan time (in process, warm, median; with the population idle since the
  last scan, and right after every process ran) and lsns's wall time on the same population,
  and their ratio (target: the scan at least 5x faster);
- the resident memory of a running `python -m ns_exporter` (target: under 60 MB);
- the median /metrics scrape latency against it, gzip as Prometheus asks (target: under 10 ms).

Run as root: python3 bench/scan_vs_lsns.py [--processes 10000 --groups 500]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as b  # the bench directory is the script's own

from ns_exporter import logs
from ns_exporter.procfs.activity import ACCOUNTING_BOUND
from ns_exporter.scanner import Scanner, ScanOptions


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=10000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved scan/lsns runs")
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--scrape-spacing", type=float, default=0.025, help="seconds")
    parser.add_argument("--scan-interval", default="5s", help="of the running exporter")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("scan_vs_lsns: run as root (it creates namespaces)", file=sys.stderr)
        return 2
    logs.configure("error", "logfmt", sys.stderr)
    b.stop_on_sigterm()
    shape = b.PopulationShape(args.processes, args.groups)
    why_not = b.room_for(shape.groups * shape.per_group)
    if why_not:
        print(f"scan_vs_lsns: cannot create {shape.describe()}: {why_not}", file=sys.stderr)
        return 1
    with b.compiled_helpers() as helpers, b.population(helpers, shape) as pop:
        b.log(f"{shape.describe()}: started in {pop.start_seconds:.1f} s")
        scanner = Scanner(ScanOptions())
        spacer = b.Spacer(ACCOUNTING_BOUND + 0.2)  # as the exporter's interval keeps them
        scanner.scan()  # warm: the first scan reads every process as new
        spacer.done()
        idle, active, lsns = [], [], []
        processes = namespaces = 0
        for _ in range(args.repeats):
            spacer.wait()
            snapshot, timing = b.timed(scanner.scan)
            idle.append(timing)
            processes = snapshot.stats.processes_scanned
            namespaces = len(snapshot.namespaces)
            pop.wake()  # every member runs: the next scan must read all their links
            _, timing = b.timed(scanner.scan)
            active.append(timing)
            spacer.done()
            lsns.append(b.lsns_walk())
        del scanner, snapshot
        with b.exporter(args.scan_interval) as running:
            running.scans(2)
            rss, hwm = running.memory_kb()
            latencies = sorted(b.scrape_latencies(running, args.scrapes, args.scrape_spacing))
            rss_after, hwm_after = running.memory_kb()
    scan, busy, lsns_time = b.median_timing(idle), b.median_timing(active), b.median_timing(lsns)
    scrape = b.median(latencies)
    p90 = latencies[int(len(latencies) * 0.9)]
    print(f"population: {shape.describe()}; {processes:,} processes, {namespaces:,} namespaces")
    print(
        f"exporter scan, warm, median of {len(idle)}: {scan.wall * 1e3:.1f} ms "
        f"({scan.cpu * 1e3:.1f} ms CPU) with the population idle since the last scan; "
        f"{busy.wall * 1e3:.1f} ms ({busy.cpu * 1e3:.1f} ms CPU) right after every process ran"
    )
    print(
        f"lsns, median of {len(lsns)}: {lsns_time.wall * 1e3:.1f} ms "
        f"({lsns_time.cpu * 1e3:.1f} ms CPU)"
    )
    print(
        f"lsns/scan: {lsns_time.wall / scan.wall:.1f}x (target >= 5x: "
        f"{verdict(lsns_time.wall / scan.wall >= 5)}); right after every process ran: "
        f"{lsns_time.wall / busy.wall:.1f}x"
    )
    peak = max(hwm, hwm_after)
    print(
        f"exporter RSS: {max(rss, rss_after) / 1024:.1f} MB, peak {peak / 1024:.1f} MB "
        f"(target < 60 MB: {verdict(peak < 60 * 1024)})"
    )
    print(
        f"/metrics scrape latency (gzip, new connection each): median {scrape * 1e3:.2f} ms, "
        f"p90 {p90 * 1e3:.2f} ms, max {latencies[-1] * 1e3:.2f} ms over {len(latencies)} scrapes "
        f"during {args.scrapes * args.scrape_spacing:.0f}+ s of scanning every "
        f"{args.scan_interval} (target median < 10 ms: {verdict(scrape < 0.010)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
