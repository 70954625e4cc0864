"""Runs probes for the (multi-threaded) exporter through the single-threaded fork server.

The fork server is spawned with a fresh interpreter (`python -I -S`, stdlib only) — never
forked from the exporter's threads. Each probe gets its own pipe, passed to the fork server
with the request; the worker writes JSON lines to it and the exporter reads them with a
deadline, so a stuck probe costs its caller at most the timeout. The fork server is
restarted when it has died.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import ns_exporter
from ns_exporter.logs import get_logger
from ns_exporter.probe.forkserver import READY
from ns_exporter.probe.result import FailureReason, ProbeResult

log = get_logger(__name__)

# Boot line for the helper: the package's parent directory goes at the end of sys.path (the
# standard library first; -S leaves site-packages out, so nothing else is importable).
_BOOT = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from ns_exporter.probe.forkserver import main; sys.exit(main(sys.argv[2:]))"
)
_PACKAGE_ROOT = str(Path(ns_exporter.__file__).resolve().parent.parent)

# How a timeout T is shared out: the worker stops itself at WORKER_SHARE, the fork server
# kills the worker's process group KILL_GRACE later, the exporter stops waiting at T + READ_GRACE.
WORKER_MARGIN = 0.15
KILL_GRACE = 0.1
READ_GRACE = 0.25


class ProbeHelperError(Exception):
    """The fork server could not be started or reached."""


def worker_timeout(timeout: float) -> float:
    return max(timeout * 0.5, timeout - WORKER_MARGIN)


def _read_lines(fd: int, deadline: float) -> tuple[list[bytes], bool]:
    """Read until the result line, end of file or the deadline: (lines, whether it timed out)."""
    buffer = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(buffer).splitlines(), True
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return bytes(buffer).splitlines(), False
        buffer += chunk
        # The result is the last line the worker writes: no need to wait for it to exit.
        if buffer.endswith(b"\n"):
            last_line = buffer.rfind(b"\n", 0, len(buffer) - 1) + 1
            if buffer.startswith(b'{"result"', last_line):
                return bytes(buffer).splitlines(), False


def _decode(lines: list[bytes]) -> tuple[dict[str, Any] | None, list[str]]:
    result: dict[str, Any] | None = None
    logs: list[str] = []
    for raw in lines:
        try:
            message = json.loads(raw)
        except ValueError:
            logs.append(f"level=error event=unreadable_helper_output line={raw[:200]!r}")
            continue
        if "log" in message:
            logs.append(str(message["log"]))
        elif "result" in message:
            result = message["result"]
    return result, logs


class ProbeRunner:
    """Thread-safe front end to the fork server. `start()` early, from the main thread."""

    def __init__(self, python: str | None = None, start_timeout: float = 10.0) -> None:
        self._python = python or sys.executable
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctrl: socket.socket | None = None

    @property
    def helper_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> ProbeRunner:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        with self._lock:
            self._ensure_started()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()  # the fork server exits on end of file
            self._ctrl = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _ensure_started(self) -> socket.socket:
        if self._ctrl is not None and self._proc is not None and self._proc.poll() is None:
            return self._ctrl
        if self._proc is not None:
            log.warning("probe_helper_restart", pid=self._proc.pid, status=self._proc.returncode)
            self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                [
                    self._python,
                    "-I",
                    "-S",
                    "-c",
                    _BOOT,
                    _PACKAGE_ROOT,
                    "--serve",
                    str(theirs.fileno()),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as err:
            ours.close()
            raise ProbeHelperError(f"cannot start the probe helper {self._python}: {err}") from err
        finally:
            theirs.close()
        ours.settimeout(self._start_timeout)
        try:
            hello = ours.recv(16)
        except OSError as err:
            hello = f"{err}".encode()
        if hello != READY:
            ours.close()
            proc.kill()
            proc.wait()
            raise ProbeHelperError(f"the probe helper did not start (got {hello[:40]!r})")
        ours.settimeout(5.0)
        self._proc, self._ctrl = proc, ours
        log.debug("probe_helper_started", pid=proc.pid)
        return ours

    def _send(self, request: bytes, fd: int) -> None:
        with self._lock:
            for attempt in (1, 2):
                ctrl = self._ensure_started()
                try:
                    socket.send_fds(ctrl, [request], [fd])
                    return
                except OSError as err:
                    if attempt == 2:
                        raise ProbeHelperError(f"cannot reach the probe helper: {err}") from err
                    log.warning("probe_helper_unreachable", error=str(err))
                    self._stop()

    def _helper_died(self) -> bool:
        """After a probe ended without a result: was it because the fork server died?"""
        with self._lock:
            proc = self._proc
        if proc is None:
            return True
        try:
            proc.wait(timeout=0.2)  # it closes its sockets just before it exits
        except subprocess.TimeoutExpired:
            return False
        return True

    def _attempt(
        self, request: dict[str, Any], deadline: float
    ) -> tuple[dict[str, Any] | None, list[str], bool]:
        """Send one request; (result message or None, log lines, whether it timed out)."""
        read_fd, write_fd = os.pipe()
        try:
            try:
                self._send(json.dumps(request).encode(), write_fd)
            finally:
                os.close(write_fd)
            lines, timed_out = _read_lines(read_fd, deadline)
        finally:
            os.close(read_fd)
        message, logs = _decode(lines)
        return message, logs, timed_out

    def run(
        self, module: str, timeout: float, test: Mapping[str, object] | None = None
    ) -> ProbeResult:
        """Run one probe; never raises for probe failures (they are in the result)."""
        started = time.monotonic()
        deadline = started + timeout + READ_GRACE
        request: dict[str, Any] = {
            "module": module,
            "timeout": worker_timeout(timeout),
            "grace": KILL_GRACE,
            "exporter_pid": os.getpid(),
            "test": dict(test or {}),
        }
        try:
            message, logs, timed_out = self._attempt(request, deadline)
            if message is None and not timed_out and self._helper_died():
                # The fork server died with the request in flight: a new one gets it.
                log.warning("probe_helper_died", module=module, effect="probe retried")
                request["timeout"] = worker_timeout(
                    max(0.1, deadline - READ_GRACE - time.monotonic())
                )
                message, logs, timed_out = self._attempt(request, deadline)
        except ProbeHelperError as err:
            log.error("probe_helper_failed", module=module, error=str(err))
            return ProbeResult.failed(
                module,
                time.monotonic() - started,
                FailureReason.INTERNAL_ERROR,
                [f"level=error event=probe_helper_failed error={json.dumps(str(err))}"],
            )
        duration = time.monotonic() - started
        if message is not None:
            result = ProbeResult.from_helper(module, duration, message, logs)
        else:
            # No result: either nothing came before the deadline, or the fork server killed a
            # worker that overran its own deadline (end of file after the worker's budget).
            overran = timed_out or duration >= worker_timeout(timeout)
            reason = FailureReason.TIMEOUT if overran else FailureReason.INTERNAL_ERROR
            logs.append(
                "level=error event=probe_incomplete "
                + ("why=timeout" if overran else 'why="the helper ended without a result"')
            )
            result = ProbeResult.failed(module, duration, reason, logs)
        if result.success:
            log.debug("probe_done", module=module, duration=round(duration, 4))
        else:
            log.warning(
                "probe_failed",
                module=module,
                reason=result.failure_reason.value if result.failure_reason else "",
                message=message.get("message", "") if message else "",
                duration=round(duration, 4),
            )
        return result
