"""The probe helper: a single-threaded fork server, started once by the exporter (stdlib only).

The exporter is multi-threaded, and a fork from a threaded process is unsafe (and unshare()
there would only move one thread). So the exporter spawns this small process once, with a
fresh interpreter, and sends it requests over a SOCK_SEQPACKET socket: a JSON request plus
the write end of a pipe (SCM_RIGHTS). For each request it forks a worker — a fresh
single-threaded process — that runs the probe and writes its JSON lines to that pipe.

It is the workers' parent and a child subreaper, so every process a probe makes is reaped
here even when its own parent was killed. It kills a worker's whole process group when the
worker overruns its deadline, and exits (killing what is left) when the exporter goes away.

Also runnable by hand or from tests as `python -m ns_exporter.probe.forkserver --once MODULE`:
one probe per module named, JSON results on stdout, no exporter needed.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import time

from ns_exporter.probe import kernel, worker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MAX_REQUEST = 65536
READY = b"ready"


def _reap(workers: dict[int, float]) -> None:
    """Reap every child that has exited: workers and orphaned probe processes alike."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        workers.pop(pid, None)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        try:
            os.kill(pid, signal.SIGKILL)  # not yet its own group leader
        except ProcessLookupError:
            return  # already gone; reaped by _reap


def _become_worker(parent_pid: int, close: list[int]) -> None:
    """In a freshly forked worker: default signals, own process group, die with the parent."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    for fd in close:
        os.close(fd)
    os.setpgid(0, 0)
    kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        raise SystemExit("the fork server died while this worker started")


def _fork(run: Callable[[], None], close: list[int]) -> int:
    """Fork a worker that runs `run` and exits; returns its pid."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _become_worker(parent, close)
            run()
            code = 0
        finally:
            os._exit(code)
    # Also here, so a kill right after the fork hits the group.
    try:
        os.setpgid(pid, pid)
    except (ProcessLookupError, PermissionError):
        return pid  # the worker has already done it, or already exited: both fine
    return pid


def _wait_for_request(sock: socket.socket) -> None:
    """A spare worker: wait for one request (forwarded by the fork server), then run it."""
    data, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 1)
    sock.close()
    if data and fds:
        worker.run(json.loads(data), fds[0])


class Spare:
    """A worker forked ahead of time, so a request does not wait for a fork."""

    def __init__(self, close: list[int]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = _fork(lambda: _wait_for_request(theirs), [*close, ours.fileno()])
        theirs.close()
        self.sock = ours

    def hand_over(self, data: bytes, fd: int) -> bool:
        try:
            socket.send_fds(self.sock, [data], [fd])
            return True
        except OSError:
            return False  # it died; the caller forks a worker the slow way
        finally:
            self.sock.close()


def _budget(request: dict[str, Any]) -> float:
    return float(request.get("timeout", 5.0)) + float(request.get("grace", 0.5))


def _dispatch(
    data: bytes, fd: int, spare: Spare | None, workers: dict[int, float], inherited: list[int]
) -> Spare | None:
    """Hand a request to the spare worker (or fork one); returns the spare left, if any."""
    try:
        request = json.loads(data)
    except ValueError:
        return spare  # not JSON: closing the pipe tells the exporter
    deadline = time.monotonic() + _budget(request)
    if spare is not None and spare.hand_over(data, fd):
        workers[spare.pid] = deadline
        return None
    if spare is not None:
        workers[spare.pid] = 0.0  # dead or dying: kill and reap it
    pid = _fork(lambda: worker.run(request, fd), inherited)
    workers[pid] = deadline
    return None


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 512):
                return
        except BlockingIOError:
            return


def serve(ctrl_fd: int) -> None:
    """The fork server's loop, until the exporter closes its end of the socket."""
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    ctrl = socket.socket(fileno=ctrl_fd)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    workers: dict[int, float] = {}  # pid → deadline (monotonic) after which it is killed
    inherited = [ctrl.fileno(), wake_r, wake_w]  # what a worker must close
    gc.freeze()  # what is loaded now stays untouched (and shared) in every worker
    spare: Spare | None = Spare(inherited)
    ctrl.send(READY)
    try:
        while True:
            now = time.monotonic()
            for pid, deadline in list(workers.items()):
                if deadline <= now:
                    _kill_group(pid)
                    workers[pid] = float("inf")  # killed; waiting to be reaped
            pending = [d for d in workers.values() if d != float("inf")]
            wait = max(0.0, min(pending) - now) if pending else None
            readable, _, _ = select.select([ctrl.fileno(), wake_r], [], [], wait)
            if wake_r in readable:
                _drain(wake_r)
            if ctrl.fileno() in readable:
                data, fds, _, _ = socket.recv_fds(ctrl, MAX_REQUEST, 1)
                if not data:
                    return  # the exporter has gone
                try:
                    if fds:
                        spare = _dispatch(data, fds[0], spare, workers, inherited)
                except OSError as err:  # fork refused (process limits): this probe fails
                    print(f"ns-exporter probe helper: {err}", file=sys.stderr, flush=True)
                finally:
                    for fd in fds:
                        os.close(fd)
            if spare is None:
                try:
                    spare = Spare(inherited)
                except OSError as err:  # the next request forks its own worker
                    print(f"ns-exporter probe helper: spare: {err}", file=sys.stderr, flush=True)
            _reap(workers)
    finally:
        if spare is not None:
            spare.sock.close()  # it reads end of file and exits
            workers[spare.pid] = 0.0
        for pid in list(workers):
            _kill_group(pid)
        deadline = time.monotonic() + 2.0
        while workers and time.monotonic() < deadline:
            _reap(workers)
            time.sleep(0.01)


def once(modules: list[str], timeout: float) -> int:
    """Run one probe per module in this (single-threaded) process; JSON results on stdout."""
    kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    failures = 0
    for module in modules:
        result, logs = _once(module, timeout)
        print(json.dumps({"module": module, "result": result, "log": logs}), flush=True)
        failures += result is None or result.get("reason") is not None
    return 1 if failures else 0


def _once(module: str, timeout: float) -> tuple[dict[str, Any] | None, list[str]]:
    read_fd, write_fd = os.pipe()
    request = {"module": module, "timeout": timeout, "exporter_pid": os.getpid()}
    pid = _fork(lambda: worker.run(request, write_fd), [read_fd])
    os.close(write_fd)
    messages = [json.loads(line) for line in worker.read_all(read_fd).splitlines()]
    os.close(read_fd)
    os.waitpid(pid, 0)
    result = next((m["result"] for m in messages if "result" in m), None)
    return result, [m["log"] for m in messages if "log" in m]


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--serve":
        serve(int(argv[1]))
        return 0
    if len(argv) >= 2 and argv[0] == "--once":
        return once(argv[1:], timeout=5.0)
    print("usage: forkserver --serve FD | --once MODULE...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
