"""Real processes for end-to-end tests: the exporter, a Prometheus, and namespaces to look at.

Every helper is a context manager that ends what it started (by pid) and removes what it
created, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Polls check() until it returns something truthy; fails with `what` on time-out."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (requests.RequestException, OSError, ValueError, KeyError) as err:
            last_error = err
        else:
            if result:
                return result
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last_error})")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass(frozen=True, slots=True)
class Exporter:
    url: str
    address: str  # host:port as Prometheus labels the instance
    log: Path


@contextlib.contextmanager
def run_exporter(*extra_args: str, scan_interval: str = "1s") -> Iterator[Exporter]:
    """`python -m ns_exporter` on a free loopback port, ready (first scan done)."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="ns-exporter-e2e-") as tmp:
        log = Path(tmp) / "exporter.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ns_exporter",
                    f"--web.listen-address={address}",
                    f"--scan.interval={scan_interval}",
                    "--log.format=logfmt",
                    *extra_args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        try:
            url = f"http://{address}"

            def ready() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"exporter exited:\n{_log_tail(log)}")
                return requests.get(f"{url}/-/ready", timeout=2).status_code == 200

            wait_for("the exporter to be ready", ready, timeout=30)
            yield Exporter(url, address, log)
        finally:
            _stop(proc)


@dataclass(frozen=True, slots=True)
class Prometheus:
    url: str

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query; returns Prometheus' `data` object, raising on any error."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"query failed: {body.get('error', response.text)}\n{expr}")
        data: dict[str, Any] = body["data"]
        return data

    def series(self, selector: str) -> list[dict[str, str]]:
        response = requests.get(
            f"{self.url}/api/v1/series",
            params={"match[]": selector, "start": str(time.time() - 300)},
            timeout=10,
        )
        response.raise_for_status()
        result: list[dict[str, str]] = response.json()["data"]
        return result


@contextlib.contextmanager
def run_prometheus(config: str) -> Iterator[Prometheus]:
    """A real Prometheus with `config` (YAML) in a temporary directory on a free port."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise AssertionError("prometheus is not installed (scripts/install-test-deps)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ns-exporter-prom-") as tmp:
        config_file = Path(tmp) / "prometheus.yml"
        config_file.write_text(textwrap.dedent(config))
        log = Path(tmp) / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={tmp}/data",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp,
            )
        try:
            url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"prometheus exited:\n{_log_tail(log)}")
                return requests.get(f"{url}/-/ready", timeout=2).status_code == 200

            wait_for("prometheus to be ready", ready, timeout=60)
            yield Prometheus(url)
        finally:
            _stop(proc)


# --- namespaces to look at ------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of a process, from /proc/*/stat."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def ns_inode(pid: int, ns_type: str) -> int:
    link = os.readlink(f"/proc/{pid}/ns/{ns_type}")  # "pid:[4026532251]"
    return int(link[link.index("[") + 1 : -1])


@contextlib.contextmanager
def unshared(argv: Sequence[str]) -> Iterator[subprocess.Popen[bytes]]:
    """Runs `unshare ...`; kills the whole chain (SIGKILL: pid 1 of a pid namespace ignores
    SIGTERM) and reaps it afterwards."""
    proc = subprocess.Popen(["unshare", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        chain = [proc.pid]
        frontier = [proc.pid]
        while frontier:
            frontier = [c for p in frontier for c in children(p)]
            chain.extend(frontier)
        for pid in reversed(chain):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def leaf(pid: int, depth: int, timeout: float = 10.0) -> int:
    """The process `depth` generations below pid (each generation its only child)."""

    def find() -> int | None:
        current = pid
        for _ in range(depth):
            kids = children(current)
            if len(kids) != 1:
                return None
            current = kids[0]
        return current

    found: int = wait_for(f"{depth} generations below pid {pid}", find, timeout)
    return found


@contextlib.contextmanager
def bound_netns(name: str) -> Iterator[str]:
    """`ip netns add NAME`: a network namespace held only by a bind mount."""
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True, capture_output=True)
