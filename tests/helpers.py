"""Test helpers: run the real exporter as a process, scrape it, spawn namespaced processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

T = TypeVar("T")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll until predicate returns something truthy; fail with the last error otherwise."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as err:  # retried until the deadline
            last = err
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last!r})")


def parse_samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


@dataclass
class Exporter:
    process: subprocess.Popen[bytes]
    url: str
    log_path: str

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def metrics_text(self) -> str:
        response = self.get("/metrics")
        response.raise_for_status()
        return response.text

    def samples(self, name: str | None = None) -> list[Sample]:
        samples = parse_samples(self.metrics_text())
        return [s for s in samples if name is None or s.name == name]

    def value(self, name: str, **labels: str) -> float | None:
        for sample in self.samples(name):
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
        return None

    def scans(self) -> float:
        return self.value("ns_exporter_scans_total") or 0.0

    def wait_scans(self, more: int = 1, timeout: float = 20.0) -> None:
        """Wait until at least `more` further scans completed."""
        start = self.scans()
        wait_for(lambda: self.scans() >= start + more, timeout)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


@contextlib.contextmanager
def run_exporter(
    *args: str,
    tmp_dir: str,
    env: dict[str, str] | None = None,
    ready: bool = True,
    preexec: Sequence[str] = (),
    python: str = sys.executable,
    pythonpath: str = REPO,
) -> Iterator[Exporter]:
    """Start `[PREEXEC...] PYTHON -m ns_exporter` on a free loopback port; stop and reap it
    afterwards. `python` and `pythonpath` let a test run another interpreter on a copy of the
    package (e.g. one that an unprivileged user can read)."""
    port = free_port()
    log_path = os.path.join(tmp_dir, f"exporter-{port}.log")
    command = [
        *preexec,
        python,
        "-m",
        "ns_exporter",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.format=logfmt",
        *args,
    ]
    full_env = {**os.environ, "PYTHONPATH": pythonpath, **(env or {})}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=full_env, cwd=tmp_dir
        )
    exporter = Exporter(process, f"http://127.0.0.1:{port}", log_path)
    try:
        if ready:

            def is_ready() -> bool:
                assert process.poll() is None, f"exporter exited:\n{exporter.log()}"
                return exporter.get("/-/ready").status_code == 200

            wait_for(is_ready, timeout=20)
        yield exporter
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ns_inode(pid: int, ns_type: str) -> int:
    link = os.readlink(f"/proc/{pid}/ns/{ns_type}")
    return int(link.split("[")[1].rstrip("]"))


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (from /proc/PID/task/*/children)."""
    children: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children.extend(int(p) for p in f.read().split())
    return children


def descendant(pid: int, comm: str, timeout: float = 10.0) -> int:
    """The first descendant of pid whose comm is `comm` (waits for it to appear)."""

    def find() -> int | None:
        todo = [pid]
        while todo:
            current = todo.pop()
            try:
                with open(f"/proc/{current}/comm") as f:
                    if f.read().strip() == comm and current != pid:
                        return current
            except FileNotFoundError:
                continue
            todo.extend(child_pids(current))
        return None

    return wait_for(find, timeout)


# A user namespace owning a pid namespace (with its own /proc mount), its PID 1 sleeping.
USER_OWNED_PID_NS = (
    "unshare",
    "--user",
    "--map-root-user",
    "--pid",
    "--fork",
    "--mount-proc",
    "sleep",
    "600",
)


@contextlib.contextmanager
def spawned(command: Sequence[str]) -> Iterator[subprocess.Popen[bytes]]:
    """Run a command in its own process group; kill the whole group afterwards."""
    process = subprocess.Popen(list(command), start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
