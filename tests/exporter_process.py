"""Start a real `ns-exporter serve` process on a free loopback port, wait for it, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Exporter:
    process: subprocess.Popen[str]
    port: int
    log: IO[str]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        """Everything the exporter logged so far."""
        self.log.seek(0)
        return self.log.read()

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.base_url + path, timeout=30) as response:
            body: bytes = response.read()
            return body.decode()


def _wait_ready(exporter: Exporter) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if exporter.process.poll() is not None:
            raise RuntimeError(
                f"exporter exited with {exporter.process.returncode}: {exporter.stderr()}"
            )
        try:
            exporter.get("/-/ready")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise TimeoutError(f"exporter not ready within {READY_TIMEOUT}s")


@contextlib.contextmanager
def running_exporter(
    prefix: Sequence[str] = (),
    python: str = sys.executable,
    pythonpath: str = str(REPO),
    extra_args: Sequence[str] = (),
) -> Iterator[Exporter]:
    """`PREFIX... PYTHON -m ns_exporter serve` on 127.0.0.1:PORT; stderr goes to a temp file.

    The process is terminated (killed after a grace period) and reaped on exit.
    """
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "PYTHONDONTWRITEBYTECODE": "1",
        "NS_EXPORTER_LOG_FORMAT": "logfmt",
    }
    argv = [
        *prefix,
        python,
        "-m",
        "ns_exporter",
        "serve",
        f"--web.listen-address=127.0.0.1:{port}",
        "--no-probe.enabled",
        "--no-events.enabled",
        *extra_args,
    ]
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        exporter = Exporter(process, port, log)
        try:
            _wait_ready(exporter)
            yield exporter
        finally:
            stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
