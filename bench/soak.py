#!/usr/bin/env python3
"""Soak: N concurrent scrapers (plus isolation probes) against a real exporter on loopback.

Starts `python -m ns_exporter` on 127.0.0.1 (an ephemeral port) unless --url/--pid name a
running one, lets it warm up, then keeps N scraper threads busy on /metrics (and one prober on
/probe when the exporter has it) for a fixed duration. Reports requests served, errors, latency
percentiles and the exporter's resident memory (VmRSS from /proc/PID/status) at start, after
the warm-up and at the end.

Target: zero errors, RSS growth after the warm-up under 5 %. Exit status 0 when met, 1 if not.
Only loopback traffic; bounded in time (--duration, default 60 s).

    python3 bench/soak.py                          # 60 s, 8 scrapers, scans every 5 s
    python3 bench/soak.py --duration 600 --scrapers 16 --json
    python3 bench/soak.py --url http://127.0.0.1:10199 --pid 1234
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
RSS_GROWTH_TARGET = 5.0  # percent, after the warm-up


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS")


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@dataclass
class Tally:
    """What one kind of request saw (mutated under a lock by the worker threads)."""

    requests: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, measured window only
    error_samples: list[str] = field(default_factory=list)

    def add(self, status: str, latency: float, ok: bool, measured: bool, detail: str = "") -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not ok:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(detail or status)
        if measured:
            self.latencies.append(latency)

    def summary(self) -> dict[str, object]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 2)

        return {
            "requests": self.requests,
            "errors": self.errors,
            "statuses": self.statuses,
            "p50_ms": pct(50),
            "p99_ms": pct(99),
            "max_ms": round(ordered[-1] * 1000, 2) if ordered else None,
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else None,
            "error_samples": self.error_samples,
        }


class Target:
    """Where the exporter listens; one new connection per request, as Prometheus does."""

    def __init__(self, url: str, auth: str | None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("soak: only plain HTTP on loopback (127.0.0.1, localhost, ::1)")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.headers = {"Accept-Encoding": "gzip", "User-Agent": "ns-exporter-soak"}
        if auth:
            import base64

            self.headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()

    def get(self, path: str, timeout: float = 30.0, gzip: bool = True) -> tuple[int, bytes]:
        headers = self.headers if gzip else {**self.headers, "Accept-Encoding": "identity"}
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def scraper(target: Target, path: str, tally: Tally, lock: threading.Lock, clock: Clock) -> None:
    while not clock.done.is_set():
        started = time.perf_counter()
        try:
            status, body = target.get(path)
            ok = status == 200 and len(body) > 0
            code = str(status)
            detail = "" if ok else f"{status}: {body[:120]!r}"
        except OSError as err:  # refused, reset, timed out
            ok, code, detail = False, type(err).__name__, str(err)
        latency = time.perf_counter() - started
        with lock:
            tally.add(code, latency, ok, clock.measuring(), detail)


_PROBE_SUCCESS = re.compile(rb"^probe_success (\S+)$", re.MULTILINE)
_PROBE_REASON = re.compile(rb'^probe_failure_info\{reason="([^"]*)"\} 1', re.MULTILINE)
_PROBE_DURATION = re.compile(rb"^probe_duration_seconds (\S+)$", re.MULTILINE)


def prober(
    target: Target, module: str, interval: float, tally: Tally, lock: threading.Lock, clock: Clock
) -> None:
    """One probe at a time, every `interval` seconds: an error is a non-200 or a failed probe."""
    while not clock.done.is_set():
        started = time.perf_counter()
        try:
            status, body = target.get(f"/probe?module={module}", timeout=60)
            match = _PROBE_SUCCESS.search(body)
            ok = status == 200 and match is not None and float(match.group(1)) == 1.0
            code = str(status) if ok or status != 200 else "probe_failed"
            detail = "" if ok else _probe_failure(status, body)
        except OSError as err:
            ok, code, detail = False, type(err).__name__, str(err)
        latency = time.perf_counter() - started
        with lock:
            tally.add(code, latency, ok, clock.measuring(), detail)
        clock.done.wait(max(0.0, interval - latency))


def _probe_failure(status: int, body: bytes) -> str:
    reason = _PROBE_REASON.search(body)
    duration = _PROBE_DURATION.search(body)
    if status == 200 and reason:
        took = f" after {float(duration.group(1)):.2f} s" if duration else ""
        return f"probe failed: {reason.group(1).decode()}{took}"
    return f"{status}: {body[:200]!r}"


class Clock:
    def __init__(self, warmup: float, duration: float) -> None:
        self.start = time.monotonic()
        self.measure_from = self.start + warmup
        self.end = self.measure_from + duration
        self.done = threading.Event()

    def measuring(self) -> bool:
        return time.monotonic() >= self.measure_from


@contextlib.contextmanager
def own_exporter(args: argparse.Namespace) -> Iterator[tuple[str, int]]:
    """Start the exporter on an ephemeral loopback port; its port from the `listening` log."""
    with tempfile.TemporaryDirectory(prefix="ns-soak-") as tmp:
        log = Path(tmp) / "exporter.log"
        command = [
            sys.executable,
            "-m",
            "ns_exporter",
            "--web.listen-address=127.0.0.1:0",
            "--log.format=json",
            f"--scan.interval={args.scan_interval}",
            *args.exporter_arg,
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            deadline = time.monotonic() + 60
            port = None
            while port is None:
                if proc.poll() is not None:
                    raise SystemExit(f"soak: exporter exited {proc.returncode}:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    raise SystemExit("soak: exporter did not start listening within 60 s")
                for line in log.read_text(errors="replace").splitlines():
                    with contextlib.suppress(ValueError):
                        record = json.loads(line)
                        if record.get("event") == "listening":
                            port = int(str(record["address"]).rpartition(":")[2])
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def wait_ready(target: Target, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if target.get("/-/ready", timeout=5)[0] == 200:
                return
        time.sleep(0.2)
    raise SystemExit("soak: the exporter did not become ready")


_SCANNED = re.compile(rb"^ns_exporter_processes_scanned (\S+)$", re.MULTILINE)
_NAMESPACES = re.compile(rb'^ns_namespaces\{ns_type="[a-z]+"\} (\S+)$', re.MULTILINE)


def host_state(target: Target) -> dict[str, float]:
    """Processes and namespaces of the exporter's last scan (empty if it cannot be read)."""
    with contextlib.suppress(OSError):
        status, body = target.get("/metrics", gzip=False)
        scanned = _SCANNED.search(body)
        if status == 200 and scanned:
            namespaces = sum(float(m.group(1)) for m in _NAMESPACES.finditer(body))
            return {"processes": float(scanned.group(1)), "namespaces": namespaces}
    return {}


def probe_available(target: Target, module: str) -> tuple[bool, str]:
    status, body = target.get(f"/probe?module={module}", timeout=60)
    if status == 404:
        return False, "the exporter has no /probe route: probes skipped"
    if status != 200:
        return False, f"/probe answered {status} ({body[:100]!r}): probes skipped"
    return True, ""


def soak(args: argparse.Namespace, url: str, pid: int) -> dict[str, object]:
    target = Target(url, args.basic_auth)
    wait_ready(target)
    rss_start = rss_kib(pid)
    notes: list[str] = []
    probes_on = False
    if args.probe_interval > 0:
        probes_on, note = probe_available(target, args.probe_module)
        if note:
            notes.append(note)
    lock = threading.Lock()
    scrapes, probes = Tally(), Tally()
    clock = Clock(args.warmup, args.duration)
    workers = [
        threading.Thread(
            target=scraper, args=(target, args.path, scrapes, lock, clock), daemon=True
        )
        for _ in range(args.scrapers)
    ]
    if probes_on:
        workers.append(
            threading.Thread(
                target=prober,
                args=(target, args.probe_module, args.probe_interval, probes, lock, clock),
                daemon=True,
            )
        )
    for worker in workers:
        worker.start()
    rss_samples: list[int] = []  # one a second during the measured window
    timeline: list[tuple[int, int]] = []  # (seconds since start, RSS KiB) every 10 s
    threads_max = 0
    rss_warm = None
    host_warm: dict[str, float] = {}
    ticks = 0
    while time.monotonic() < clock.end:
        time.sleep(min(1.0, max(0.0, clock.end - time.monotonic())))
        rss = rss_kib(pid)
        ticks += 1
        if ticks % 10 == 0:
            timeline.append((round(time.monotonic() - clock.start), rss))
        threads_max = max(threads_max, threads_of(pid))
        if clock.measuring():
            rss_samples.append(rss)
            if rss_warm is None:
                rss_warm = rss
                host_warm = host_state(target)
    clock.done.set()
    for worker in workers:
        worker.join(90)
    rss_end = rss_kib(pid)
    warm = rss_warm or rss_start
    # Single samples jump with the garbage collector and the allocator: the growth compares the
    # medians of the first and the last fifth of the measured window.
    fifth = max(1, len(rss_samples) // 5)
    early = statistics.median(rss_samples[:fifth]) if rss_samples else warm
    late = statistics.median(rss_samples[-fifth:]) if rss_samples else rss_end
    growth = (late - early) / early * 100
    elapsed = clock.end - clock.measure_from
    result: dict[str, object] = {
        "url": url,
        "pid": pid,
        "scrapers": args.scrapers,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "scrape": scrapes.summary(),
        "scrape_rate_per_s": round(len(scrapes.latencies) / elapsed, 1),
        "probe": probes.summary() if probes_on else None,
        "rss_kib": {
            "start": rss_start,
            "after_warmup": warm,
            "end": rss_end,
            "max": max(rss_samples, default=rss_end),
            "median_first_fifth": round(early),
            "median_last_fifth": round(late),
            "growth_after_warmup_pct": round(growth, 2),
            "timeline": timeline,
        },
        # what the exporter was scanning: RSS follows the host's processes and namespaces
        "host": {"after_warmup": host_warm, "end": host_state(target)},
        "threads_max": threads_max,
        "notes": notes,
    }
    errors = scrapes.errors + probes.errors
    result["target_met"] = errors == 0 and growth < RSS_GROWTH_TARGET
    return result


def print_report(result: dict[str, object]) -> None:
    scrape = result["scrape"]
    rss = result["rss_kib"]
    assert isinstance(scrape, dict) and isinstance(rss, dict)
    print(
        f"soak of {result['url']} (pid {result['pid']}): {result['scrapers']} scrapers, "
        f"{result['warmup_s']:.0f} s warm-up + {result['duration_s']:.0f} s measured"
    )
    print(
        f"  scrapes: {scrape['requests']} requests, {scrape['errors']} errors, "
        f"{result['scrape_rate_per_s']}/s measured, p50 {scrape['p50_ms']} ms, "
        f"p99 {scrape['p99_ms']} ms, max {scrape['max_ms']} ms, statuses {scrape['statuses']}"
    )
    probe = result["probe"]
    if isinstance(probe, dict):
        print(
            f"  probes:  {probe['requests']} requests, {probe['errors']} errors, "
            f"p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms, statuses {probe['statuses']}"
        )
    for note in result["notes"]:  # type: ignore[attr-defined]
        print(f"  note: {note}")
    print(
        f"  RSS: start {rss['start'] / 1024:.1f} MiB, after warm-up "
        f"{rss['after_warmup'] / 1024:.1f} MiB, end {rss['end'] / 1024:.1f} MiB, "
        f"max {rss['max'] / 1024:.1f} MiB, growth after warm-up "
        f"{rss['growth_after_warmup_pct']:+.2f} % (medians of the first and last fifth: "
        f"{rss['median_first_fifth'] / 1024:.1f} -> {rss['median_last_fifth'] / 1024:.1f} MiB; "
        f"target < {RSS_GROWTH_TARGET} %)"
    )
    host = result["host"]
    assert isinstance(host, dict)
    print(f"  host scanned: after warm-up {host['after_warmup']}, end {host['end']}")
    timeline = " ".join(f"{t}s:{kib / 1024:.1f}" for t, kib in rss["timeline"])
    print(f"  RSS every 10 s (MiB): {timeline}")
    print(f"  exporter threads (max sampled): {result['threads_max']}")
    for sample in scrape["error_samples"]:
        print(f"  scrape error: {sample}")
    if isinstance(probe, dict):
        for sample in probe["error_samples"]:
            print(f"  probe error: {sample}")
    print(
        f"  target {'met' if result['target_met'] else 'NOT met'}: zero errors, "
        f"RSS growth < {RSS_GROWTH_TARGET} %"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (60)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds before measuring (default: a sixth of --duration, 10..30)",
    )
    parser.add_argument("--scrapers", type=int, default=8, help="concurrent scrapers (8)")
    parser.add_argument("--path", default="/metrics", help="scraped path (/metrics)")
    parser.add_argument("--probe-module", default="pid", help="/probe module (pid)")
    parser.add_argument(
        "--probe-interval", type=float, default=1.0, help="seconds between probes, 0 for none (1)"
    )
    parser.add_argument("--scan-interval", default="5s", help="exporter --scan.interval (5s)")
    parser.add_argument(
        "--exporter-arg",
        action="append",
        default=[],
        help="extra flag for the exporter this script starts (repeatable)",
    )
    parser.add_argument("--url", help="soak a running exporter instead (loopback only)")
    parser.add_argument("--pid", type=int, help="its pid, for RSS (with --url)")
    parser.add_argument("--basic-auth", metavar="USER:PASSWORD", help="credentials to send")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 24 * 3600:
        parser.error("--duration must be within (0, 86400] seconds")
    if args.warmup is None:
        args.warmup = min(30.0, max(10.0, args.duration / 6))
    if bool(args.url) != bool(args.pid):
        parser.error("--url and --pid go together")
    if args.url:
        result = soak(args, args.url, args.pid)
    else:
        with own_exporter(args) as (url, pid):
            result = soak(args, url, pid)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
