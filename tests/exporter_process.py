"""The real exporter as a child process on an ephemeral loopback port, stopped by its pid.

It listens on 127.0.0.1:0 and the port is read from its `listening` log line (JSON), so there
is no race for a free port with other tests running at the same time.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class RunningExporter:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_records(self) -> list[dict[str, Any]]:
        return read_records(self.log)


def read_records(log: Path) -> list[dict[str, Any]]:
    records = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll check() until it returns something truthy; AssertionError naming `what` on time-out."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError, KeyError) as err:  # requests' errors are OSErrors
            last = err
        else:
            if result:
                return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def command(args: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ns_exporter",
        "--web.listen-address=127.0.0.1:0",
        "--log.format=json",
        *args,
    ]


@contextlib.contextmanager
def run_exporter(*args: str) -> Iterator[RunningExporter]:
    """Start the exporter and wait until it listens (not until its first scan)."""
    with tempfile.TemporaryDirectory(prefix="ns-exporter-test-") as tmp:
        log = Path(tmp) / "exporter.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command(args), stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:

            def listening() -> int | None:
                if proc.poll() is not None:
                    raise AssertionError(f"exporter exited {proc.returncode}:\n{log.read_text()}")
                for record in read_records(log):
                    if record.get("event") == "listening":
                        return int(str(record["address"]).rpartition(":")[2])
                return None

            port = wait_for("the exporter to listen", listening)
            yield RunningExporter(proc, port, log)
        finally:
            stop(proc)


def run_to_exit(*args: str, timeout: float = 60.0) -> tuple[int, list[dict[str, Any]]]:
    """Run the exporter expecting it to exit by itself: (exit status, log records)."""
    with tempfile.TemporaryDirectory(prefix="ns-exporter-test-") as tmp:
        log = Path(tmp) / "exporter.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command(args), stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            status = proc.wait(timeout=timeout)
        finally:
            stop(proc)
        return status, read_records(log)
