"""Shared parts of the benchmarks: C helpers, synthetic process populations, timing, and a
real exporter process to measure from outside.

Nothing here asserts anything: the scripts print figures and ratios.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
C_SOURCES = BENCH / "c"
PER_PROCESS_KB = 160  # measured ~130 kB of kernel and user memory per pause() process
MEMORY_MARGIN_KB = 1024 * 1024
PID_MARGIN = 2000  # tasks other users of the machine may start meanwhile

T = TypeVar("T")


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every population is removed."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


@contextlib.contextmanager
def compiled_helpers(names: tuple[str, ...] = ("population", "walker")) -> Iterator[Path]:
    """The C helpers (c/NAME.c) compiled with the system cc into a temporary directory."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise SystemExit(f"bench: no C compiler ({cc}); install gcc or set CC")
    with tempfile.TemporaryDirectory(prefix="ns-bench-") as tmp:
        out = Path(tmp)
        for name in names:
            subprocess.run(
                [cc, "-O2", "-Wall", "-o", str(out / name), str(C_SOURCES / f"{name}.c")],
                check=True,
            )
        yield out


# --- populations --------------------------------------------------------------------------------


def _meminfo_kb(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/meminfo has no {field}")


def tasks_now() -> int:
    """Threads on the machine (pids in use), from /proc/loadavg."""
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])


def room_for(processes: int) -> str | None:
    """Why a population of this size cannot be created here, or None when it can."""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    threads_max = int(Path("/proc/sys/kernel/threads-max").read_text())
    limit = min(pid_max, threads_max)
    free_pids = limit - tasks_now() - PID_MARGIN
    if processes > free_pids:
        return (
            f"needs {processes} pids, only {max(free_pids, 0)} free below "
            f"min(pid_max, threads-max) = {limit} (keeping {PID_MARGIN} spare)"
        )
    need_kb = processes * PER_PROCESS_KB + MEMORY_MARGIN_KB
    available = _meminfo_kb("MemAvailable")
    if need_kb > available:
        return f"needs ~{need_kb // 1024} MB, {available // 1024} MB available"
    return None


@dataclass(frozen=True, slots=True)
class PopulationShape:
    processes: int
    groups: int  # each group has its own uts, ipc and net namespace

    @property
    def per_group(self) -> int:
        return max(1, self.processes // self.groups)

    def describe(self) -> str:
        total = self.groups * self.per_group
        return f"{total:,} processes in {self.groups:,} groups (own uts+ipc+net namespaces each)"


class Population:
    """A running synthetic population; close() kills and reaps every process of it."""

    def __init__(self, helpers: Path, shape: PopulationShape) -> None:
        self.shape = shape
        started = time.perf_counter()
        self._launcher = subprocess.Popen(
            [str(helpers / "population"), str(shape.groups), str(shape.per_group)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._launcher.stdout is not None
        line = self._launcher.stdout.readline()
        if line.strip() != b"ready":
            self.close()
            raise RuntimeError(f"population of {shape.describe()} failed to start")
        self.start_seconds = time.perf_counter() - started

    @property
    def session(self) -> int:
        return self._launcher.pid

    def wake(self, settle: float = 1.0) -> None:
        """Make every member run once (SIGUSR1, a no-op handler), then let them all run."""
        os.killpg(self.session, signal.SIGUSR1)
        time.sleep(settle)

    def close(self) -> None:
        """SIGTERM the launcher (it kills and reaps its tree), then sweep its session."""
        if self._launcher.poll() is None:
            self._launcher.terminate()
            try:
                self._launcher.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self._launcher.kill()
                self._launcher.wait()
        left = session_members(self.session)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if left:
            log(f"killed {len(left)} processes left in session {self.session}")


def session_members(sid: int) -> list[int]:
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            data = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue  # exited meanwhile
        fields = data[data.rfind(b")") + 2 :].split()
        if int(fields[3]) == sid:
            members.append(int(name))
    return members


@contextlib.contextmanager
def population(helpers: Path, shape: PopulationShape) -> Iterator[Population]:
    pop = Population(helpers, shape)
    try:
        yield pop
    finally:
        pop.close()


def settle(seconds: float = 2.0) -> None:
    """Let the kernel finish tearing down namespaces of the previous population."""
    time.sleep(seconds)


# --- walkers --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """One timed run: wall-clock seconds and CPU seconds (user + system) it used."""

    wall: float
    cpu: float


def median_timing(timings: list[Timing]) -> Timing:
    return Timing(median([t.wall for t in timings]), median([t.cpu for t in timings]))


def c_walk(helpers: Path, mode: str = "naive", procfs: str = "/proc") -> tuple[int, Timing]:
    """One walk of the C walker: (processes, timing measured by the walker itself)."""
    out = subprocess.run(
        [str(helpers / "walker"), "--mode", mode, procfs, "1"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[1]), Timing(float(out[2]), float(out[3]))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lsns_walk() -> Timing:
    """One `lsns` (default output): wall time and its CPU time."""
    cpu0 = _children_cpu()
    started = time.perf_counter()
    subprocess.run(["lsns"], check=True, stdout=subprocess.DEVNULL)
    return Timing(time.perf_counter() - started, _children_cpu() - cpu0)


def timed(fn: Callable[[], T]) -> tuple[T, Timing]:
    """Run fn in this thread: its result, wall time and this thread's CPU time."""
    cpu0 = time.thread_time()
    started = time.perf_counter()
    result = fn()
    return result, Timing(time.perf_counter() - started, time.thread_time() - cpu0)


class Spacer:
    """Keeps successive exporter scans at least `gap` seconds apart (end to start), as the
    exporter's own interval does: the scanner trusts that a process has not run only when
    the reading it compares with is older than ACCOUNTING_BOUND."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self._last = -gap

    def wait(self) -> None:
        remaining = self._last + self.gap - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def done(self) -> None:
        self._last = time.monotonic()


def median(values: list[float]) -> float:
    return statistics.median(values)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} us"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.1f} ms"


# --- a real exporter process ---------------------------------------------------------------


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ScanDone:
    """One `scan_done` log event of the exporter, with its CPU time read when it arrived."""

    cpu_seconds: float
    duration: float


class Exporter:
    """`python -m ns_exporter` from this checkout, listening on an ephemeral port.

    A thread drains its JSON log; every `scan_done` event (debug level) is stamped with the
    process's CPU time read from /proc/PID/stat at that moment, so CPU per scan is measured
    from outside, aligned on scan boundaries, without HTTP requests in the window.
    """

    def __init__(self, scan_interval: str, *extra: str) -> None:
        self.scan_interval = scan_interval
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ns_exporter",
                "serve",
                "--web.listen-address=127.0.0.1:0",
                f"--scan.interval={scan_interval}",
                "--log.format=json",
                "--log.level=debug",
                *extra,
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
        )
        self._port: queue.Queue[int] = queue.Queue()
        self._scans: list[ScanDone] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        try:
            self.port = self._port.get(timeout=60)
        except queue.Empty:
            self.close()
            raise RuntimeError("exporter did not start listening") from None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _read_log(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            name = event.get("event")
            if name == "scan_done":
                done = ScanDone(self.cpu_seconds(), float(event.get("duration", 0.0)))
                with self._changed:
                    self._scans.append(done)
                    self._changed.notify_all()
            elif name == "listening":
                self._port.put(int(str(event["address"]).rsplit(":", 1)[1]))
            elif event.get("level") in ("warning", "error", "critical"):
                log(f"exporter: {line.decode(errors='replace').strip()}")

    def scans(self, count: int, timeout: float = 900.0) -> list[ScanDone]:
        """The first `count` scans, waiting for them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._scans) >= count, timeout):
                raise RuntimeError(f"exporter did not complete {count} scans in {timeout} s")
            return self._scans[:count]

    def get(self, path: str, gzip: bool = True) -> tuple[int, bytes, float]:
        """(status, body, seconds) of one request on a fresh connection."""
        headers = {"Accept-Encoding": "gzip"} if gzip else {}
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        return response.status, body, time.perf_counter() - started

    def cpu_seconds(self) -> float:
        """utime + stime of the exporter process (all its threads), from outside."""
        data = Path(f"/proc/{self.pid}/stat").read_bytes()
        fields = data[data.rfind(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _clock_ticks()

    def memory_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in kB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values["VmRSS"], values["VmHWM"]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(timeout=5)


@contextlib.contextmanager
def exporter(scan_interval: str, *extra: str) -> Iterator[Exporter]:
    running = Exporter(scan_interval, *extra)
    try:
        yield running
    finally:
        running.close()


@dataclass(frozen=True, slots=True)
class CpuPerScan:
    seconds: float  # CPU seconds (user + system) per scan, all threads of the process
    scans: int
    scan_seconds: float  # median of the exporter's own scan durations in the window
    interval: str  # its --scan.interval


def cpu_per_scan(running: Exporter, scans: int, warm: int = 2) -> CpuPerScan:
    """CPU per scan of a running exporter, between the end of scan `warm` (the first one
    reads every process as new) and `scans` later; the CPU it uses while waiting between
    scans (serving nothing) is counted too."""
    window = running.scans(warm + scans)[warm - 1 :]
    return CpuPerScan(
        seconds=(window[-1].cpu_seconds - window[0].cpu_seconds) / scans,
        scans=scans,
        scan_seconds=median([s.duration for s in window[1:]]),
        interval=running.scan_interval,
    )


def scrape_latencies(running: Exporter, count: int, spacing: float) -> list[float]:
    latencies = []
    for _ in range(count):
        status, _, seconds = running.get("/metrics")
        if status == 200:
            latencies.append(seconds)
        time.sleep(spacing)
    return latencies
