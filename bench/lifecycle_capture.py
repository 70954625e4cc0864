#!/usr/bin/env python3
"""Capture rate of short-lived namespaces, and the exporter's CPU with the event listener on/off.

For each rate (namespaces per second) a driver forks children that unshare namespaces (default
uts+ipc, like `unshare --uts --ipc sleep 0.1`), report the namespaces' identities (type, inode,
NS_GET_ID) to a file, and exec `sleep LIFETIME`. Then:
- capture: the real exporter (events on, debug log) runs during the load; a namespace is caught
  when the exporter logged it created (matched by its 64-bit id, else by inode) and destroyed;
- cpu: the exporter runs the same load twice, listener on and off (info log); its user+system
  CPU over the load window is read from /proc/PID/stat;
- floor: the same load once more under c/connector_floor.c, a minimal C listener, in two modes:
  `recv` only receives the events, `links` also opens /proc/PID and readlinks the eight ns links
  of every new or exec'ing process (the least any proc connector listener has to do to see a
  namespace that lives between two scans). Its CPU is the floor of the mechanism: the
  listener's figure is set against it as well as against polling.

Needs root. Bounded in time (about 2 x duration x rates + capture runs) and cleans up every
process it starts. Prints a table and writes JSON (default bench/out/lifecycle_capture.json).

    sudo python3 bench/lifecycle_capture.py --rates 10,100,500 --duration 30
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402  (the bench directory is the script's own)

CLONE_FLAGS = {"uts": 0x04000000, "ipc": 0x08000000, "net": 0x40000000, "cgroup": 0x02000000}
NS_GET_ID = (2 << 30) | (8 << 16) | (0xB7 << 8) | 13
CLK_TCK = os.sysconf("SC_CLK_TCK")
_CREATED = re.compile(r"event=namespace_created .*ns_type=(\w+) inode=(\d+) ns_id=(\w+) by=(\w+)")
_DESTROYED = re.compile(
    r"event=namespace_destroyed .*ns_type=(\w+) inode=(\d+) ns_id=(\w+) lifetime=([\d.e-]+)"
)


# --- the load --------------------------------------------------------------------------------


def _ns_id(path: str) -> int | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, NS_GET_ID, buf, True)
        value: int = struct.unpack("Q", buf)[0]
        return value
    except OSError:
        return None
    finally:
        os.close(fd)


def drive(rate: float, duration: float, lifetime: float, types: list[str], record: Path) -> int:
    """Create `rate` namespace sets per second for `duration` s; returns how many."""
    libc = ctypes.CDLL(None, use_errno=True)
    flags = 0
    for ns_type in types:
        flags |= CLONE_FLAGS[ns_type]
    out = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sleep = "/bin/sleep"
    count = int(rate * duration)
    start = time.monotonic()
    children = 0
    try:
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pid = os.fork()
            if pid == 0:  # child: unshare, tell who we are, become `sleep`
                try:
                    if libc.unshare(flags) != 0:
                        os._exit(3)
                    lines = []
                    now = time.time()
                    for ns_type in types:
                        path = f"/proc/self/ns/{ns_type}"
                        inode = os.stat(path).st_ino
                        lines.append(f"{ns_type} {inode} {_ns_id(path)} {now:.6f}\n")
                    os.write(out, "".join(lines).encode())
                    os.execv(sleep, ["sleep", str(lifetime)])
                finally:
                    os._exit(4)
            children += 1
            _reap(block=False)
    finally:
        _reap(block=True)
        os.close(out)
    return children


def _reap(block: bool) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_driver(
    rate: float, duration: float, lifetime: float, types: list[str], record: Path
) -> int:
    """The driver in a process of its own (it reaps every child it has)."""
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--drive",
            str(rate),
            "--duration",
            str(duration),
            "--lifetime",
            str(lifetime),
            "--types",
            ",".join(types),
            "--output",
            str(record),
        ],
        capture_output=True,
        text=True,
        timeout=duration * 3 + 60,
        check=True,
    )
    return int(result.stdout.strip())


def created_by_driver(record: Path) -> list[tuple[str, int, int | None]]:
    entries = []
    for line in record.read_text().splitlines():
        ns_type, inode, ns_id, _when = line.split()
        entries.append((ns_type, int(inode), None if ns_id == "None" else int(ns_id)))
    return entries


# --- the exporter ------------------------------------------------------------------------------


class Exporter:
    def __init__(self, workdir: Path, events: bool, debug: bool, interval: str) -> None:
        self.log_path = workdir / f"exporter-{'on' if events else 'off'}-{time.time_ns()}.log"
        flags = [
            "--events.enabled" if events else "--no-events.enabled",
            f"--scan.interval={interval}",
            "--web.listen-address=127.0.0.1:0",
            "--log.format=logfmt",
            f"--log.level={'debug' if debug else 'info'}",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ns_exporter", *flags], stdout=log, stderr=log, env=env
            )
        self.url = self._wait_ready()

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + 60
        url = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exporter exited: {self.log_path.read_text()[-2000:]}")
            found = re.search(r"event=listening .*address=127\.0\.0\.1:(\d+)", self.log())
            if found:
                url = f"http://127.0.0.1:{found.group(1)}"
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
                        if response.status == 200:
                            return url
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError("exporter not ready after 60 s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text: str = response.read().decode()
            return text

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def counter(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(f"{name}{{{want}}}" if want else name) + r" ([\d.e+-]+)"
    found = re.search(r"^" + pattern + "$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


# --- the runs ---------------------------------------------------------------------------------


@dataclass
class Capture:
    rate: float
    created: int  # namespaces the driver created (all types)
    caught_created: int
    caught_destroyed: int
    sub_second_lifetimes: int
    dropped: float
    lost: float

    @property
    def percent(self) -> float:
        return 100.0 * self.caught_created / self.created if self.created else 0.0


@dataclass
class Cpu:
    rate: float
    seconds_on: float
    seconds_off: float
    window: float
    created_on: float = 0.0  # counter deltas (all activity on the host, for reference)
    created_off: float = 0.0
    events_on: float = 0.0  # process events the listener received during the window
    floor_recv: float = 0.0  # CPU seconds of the C listener only receiving the events
    floor_links: float = 0.0  # ... also reading the ns links of every new or exec'ing process

    @property
    def us_per_event(self) -> float:
        extra = self.seconds_on - self.seconds_off
        return 1e6 * extra / self.events_on if self.events_on else 0.0

    @property
    def ratio(self) -> float:
        return self.seconds_on / self.seconds_off if self.seconds_off else float("inf")

    @property
    def ratio_to_floor(self) -> float:
        return self.seconds_on / self.floor_links if self.floor_links else float("inf")


@dataclass
class Report:
    types: list[str]
    lifetime: float
    duration: float
    interval: str
    loadavg_before: str
    captures: list[Capture] = field(default_factory=list)
    cpus: list[Cpu] = field(default_factory=list)


def capture_run(workdir: Path, rate: float, args: argparse.Namespace) -> Capture:
    record = workdir / f"driver-{rate}.txt"
    record.unlink(missing_ok=True)
    exporter = Exporter(workdir, events=True, debug=True, interval=args.interval)
    try:
        before = exporter.metrics()
        run_driver(rate, args.capture_duration, args.lifetime, args.types, record)
        time.sleep(max(2.0, 6 * args.lifetime))  # let the last exits and checks through
        after = exporter.metrics()
        log = exporter.log()
    finally:
        exporter.stop()
    made = created_by_driver(record)
    created_ids = {(t, int(i)) if n == "None" else (t, n) for t, i, n, _by in _CREATED.findall(log)}
    destroyed: dict[tuple[str, object], float] = {}
    for t, i, n, lifetime in _DESTROYED.findall(log):
        destroyed[(t, int(i)) if n == "None" else (t, n)] = float(lifetime)

    def key(entry: tuple[str, int, int | None]) -> tuple[str, object]:
        t, inode, ns_id = entry
        return (t, str(ns_id)) if ns_id is not None else (t, inode)

    caught = [e for e in made if key(e) in created_ids]
    gone = [e for e in made if key(e) in destroyed]
    return Capture(
        rate=rate,
        created=len(made),
        caught_created=len(caught),
        caught_destroyed=len(gone),
        sub_second_lifetimes=sum(1 for e in gone if destroyed[key(e)] < 1.0),
        dropped=counter(after, "ns_exporter_events_dropped_total")
        - counter(before, "ns_exporter_events_dropped_total"),
        lost=counter(after, "ns_exporter_events_lost_total")
        - counter(before, "ns_exporter_events_lost_total"),
    )


def cpu_run(
    workdir: Path, rate: float, events: bool, args: argparse.Namespace
) -> tuple[float, float, float]:
    record = workdir / f"cpu-{rate}-{events}.txt"
    exporter = Exporter(workdir, events=events, debug=False, interval=args.interval)
    try:
        time.sleep(1.0)  # past start-up
        before_text = exporter.metrics()
        cpu0 = exporter.cpu_seconds()
        run_driver(rate, args.duration, args.lifetime, args.types, record)
        cpu1 = exporter.cpu_seconds()
        after_text = exporter.metrics()
    finally:
        exporter.stop()
        record.unlink(missing_ok=True)
    created = sum(
        counter(after_text, "ns_namespaces_created_total", ns_type=t)
        - counter(before_text, "ns_namespaces_created_total", ns_type=t)
        for t in args.types
    )
    received = sum(
        counter(after_text, "ns_exporter_events_total", event=e)
        - counter(before_text, "ns_exporter_events_total", event=e)
        for e in ("fork", "exec", "exit")
    )
    return cpu1 - cpu0, created, received


@dataclass(frozen=True)
class Floor:
    """What c/connector_floor.c reports when stopped."""

    mode: str
    events: int
    reads: int
    cpu_seconds: float  # user + system


def measure_floor(binary: Path, mode: str, load: Callable[[], object]) -> Floor:
    """Run the C floor listener (`recv` or `links`) around `load()`; stop it and parse it."""
    process = subprocess.Popen(
        [str(binary), "--mode", mode, "/proc"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        ready = process.stderr.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"connector_floor did not start: {ready} {process.stderr.read()}")
        load()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"connector_floor failed ({process.returncode}): {err}")
    name, shown_mode, events, reads, user, system = out.split()
    if (name, shown_mode) != ("floor", mode):
        raise RuntimeError(f"connector_floor printed {out!r}")
    return Floor(mode, int(events), int(reads), float(user) + float(system))


def floor_run(
    workdir: Path, helpers: Path, rate: float, mode: str, args: argparse.Namespace
) -> float:
    """CPU seconds of c/connector_floor.c over the same load as the exporter's runs."""
    record = workdir / f"floor-{rate}-{mode}.txt"
    try:
        floor = measure_floor(
            helpers / "connector_floor",
            mode,
            lambda: run_driver(rate, args.duration, args.lifetime, args.types, record),
        )
    finally:
        record.unlink(missing_ok=True)
    return floor.cpu_seconds


def cpu_figures(workdir: Path, helpers: Path, rate: float, args: argparse.Namespace) -> Cpu:
    """The four CPU runs of one rate, printed as they finish."""
    on, created_on, events_on = cpu_run(workdir, rate, True, args)
    off, created_off, _ = cpu_run(workdir, rate, False, args)
    recv = floor_run(workdir, helpers, rate, "recv", args)
    links = floor_run(workdir, helpers, rate, "links", args)
    cpu = Cpu(rate, on, off, args.duration, created_on, created_off, events_on, recv, links)

    def share(seconds: float) -> str:
        return f"{seconds:.2f} s ({100 * seconds / args.duration:.1f}% of a core)"

    print(
        f"cpu     {rate:>5.0f}/s over {args.duration:.0f} s: listener on {share(on)}, "
        f"off {share(off)}, ratio on/off {cpu.ratio:.1f}x; "
        f"C floor: receive only {share(recv)}, receive + links {share(links)}, "
        f"listener / C floor {cpu.ratio_to_floor:.1f}x, floor / off "
        f"{links / off if off else float('inf'):.1f}x; "
        f"{cpu.us_per_event:.0f} us per event ({events_on:.0f} events); "
        f"created_total grew {created_on:.0f} (on) vs {created_off:.0f} (off)",
        flush=True,
    )
    return cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="10,100,500", help="namespaces per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per CPU run")
    parser.add_argument("--capture-duration", type=float, default=10.0)
    parser.add_argument("--lifetime", type=float, default=0.1, help="seconds each one lives")
    parser.add_argument("--types", default="uts,ipc", help=f"of {','.join(CLONE_FLAGS)}")
    parser.add_argument("--interval", default="15s", help="the exporter's --scan.interval")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--drive", type=float, help=argparse.SUPPRESS)  # the driver process
    parser.add_argument("--output", default=str(REPO / "bench" / "out" / "lifecycle_capture.json"))
    args = parser.parse_args()
    if args.drive is not None:
        types = args.types.split(",")
        print(drive(args.drive, args.duration, args.lifetime, types, Path(args.output)))
        return 0
    if os.geteuid() != 0:
        print("needs root (unshare, the proc connector)", file=sys.stderr)
        return 2
    args.types = args.types.split(",")
    rates = [float(r) for r in args.rates.split(",")]
    report = Report(
        types=args.types,
        lifetime=args.lifetime,
        duration=args.duration,
        interval=args.interval,
        loadavg_before=Path("/proc/loadavg").read_text().strip(),
    )
    with tempfile.TemporaryDirectory(prefix="ns-bench-") as tmp:
        workdir = Path(tmp)
        for rate in rates:
            result = capture_run(workdir, rate, args)
            report.captures.append(result)
            print(
                f"capture {rate:>5.0f}/s: {result.caught_created}/{result.created} created "
                f"({result.percent:.2f}%), {result.caught_destroyed} destroyed, "
                f"{result.sub_second_lifetimes} with lifetime < 1 s, "
                f"dropped {result.dropped:.0f}, lost {result.lost:.0f}",
                flush=True,
            )
        if not args.skip_cpu:
            with benchlib.compiled_helpers(("connector_floor",)) as helpers:
                for rate in rates:
                    report.cpus.append(cpu_figures(workdir, helpers, rate, args))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(report)
    for cpu, entry in zip(report.cpus, data["cpus"], strict=True):
        entry["ratio"] = cpu.ratio
        entry["us_per_event"] = cpu.us_per_event
        entry["ratio_to_floor"] = cpu.ratio_to_floor
    for capture, entry in zip(report.captures, data["captures"], strict=True):
        entry["percent"] = capture.percent
    data["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
