"""One probe, run in a fresh single-threaded worker process (stdlib only).

The fork server forks a worker per request. The worker stays in the exporter's namespaces
(only entering a user namespace of its own when it lacks CAP_SYS_ADMIN), forks the child that
enters the new namespace, watches it from the host side, kills and reaps it, undoes what it
prepared and checks that nothing is left. It streams JSON lines to the exporter:
`{"log": "..."}` for each log line (flushed before each step that may block), and last
`{"result": {...}}`.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import time

from ns_exporter.probe import kernel
from ns_exporter.probe.modules import MODULES
from ns_exporter.probe.reasons import CLEANUP_CHECK, FailureReason, reason_for_checks
from ns_exporter.probe.spec import DISTINCT_NAMESPACE, ModuleSpec, Probe, ProbeError, setup_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

NS_LINKS: tuple[str, ...] = tuple(sorted({spec.link for spec in MODULES.values()}))


class ProbeTimeoutError(Exception):
    """The worker's own deadline passed."""


class ChildState:
    """The worker's handles on its child; everything here is released by `finish`."""

    __slots__ = ("go_w", "ns_fds", "pid", "reaped", "report_r")

    def __init__(self) -> None:
        self.pid = 0
        self.reaped = False
        self.report_r = -1
        self.go_w = -1
        # Open namespace files of the child's new namespaces: they keep the namespaces (and
        # their inode numbers) alive until the cleanup check is done, and they move the
        # namespaces' teardown after the answer (see `run`).
        self.ns_fds: list[int] = []


def write_line(fd: int, message: dict[str, Any]) -> None:
    data = memoryview(json.dumps(message, separators=(",", ":")).encode() + b"\n")
    while data:
        data = data[os.write(fd, data) :]


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def flush(probe: Probe, out_fd: int) -> None:
    """Send the log lines made since the last flush (before anything that may block)."""
    pending = probe.lines[probe.flushed :]
    if pending:
        payload = b"".join(
            json.dumps({"log": line}, separators=(",", ":")).encode() + b"\n" for line in pending
        )
        view = memoryview(payload)
        while view:
            view = view[os.write(out_fd, view) :]
        probe.flushed = len(probe.lines)


def descendants(root: int) -> list[int]:
    """Every live process below `root` (from /proc/PID/task/TID/children)."""
    found: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue  # exited while we looked
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as children:
                    kids = [int(kid) for kid in children.read().split()]
            except FileNotFoundError:
                continue
            found.extend(kids)
            stack.extend(kids)
    return found


def processes_in(link: str, inode: int, candidates: list[int]) -> list[int]:
    """The candidates whose /proc/PID/ns/LINK is that namespace."""
    found = []
    for pid in candidates:
        try:
            if kernel.ns_inode(pid, link) == inode:
                found.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked: in no namespace any more
    return found


def _host_inodes(exporter_pid: int) -> dict[str, int]:
    """The exporter's namespaces (the worker's own where the exporter's are unreadable)."""
    inodes = {}
    for link in NS_LINKS:
        for source in (exporter_pid, "self"):
            try:
                inodes[link] = kernel.ns_inode(source, link)
                break
            except FileNotFoundError:
                continue  # this kernel has no such kind, or the exporter is gone
            except PermissionError:
                continue  # try our own view, which is the same namespaces
    return inodes


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise ProbeTimeoutError


def _hang_forever() -> None:
    """Test seam: a worker that ignores its own deadline (the fork server must kill it)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    while True:
        time.sleep(3600)


# --- the child ------------------------------------------------------------------------------


def _inside(spec: ModuleSpec, probe: Probe) -> dict[str, Any]:
    try:
        spec.run_enter(probe)
        probe.inner_inode = kernel.ns_inode("self", spec.link)
        probe.isolated = probe.inner_inode != probe.host_inode
        if not probe.isolated:
            probe.log("warn", "namespace_not_new", link=spec.link, inode=probe.inner_inode)
        if probe.hang == "inside":  # test seam: a child that never reports
            while True:
                signal.pause()
        spec.inside(probe)
        return probe.child_report()
    except ProbeError as err:
        report = probe.child_report()
        report["error"] = {"reason": err.reason.value, "message": str(err)}
        return report
    except Exception as err:
        report = probe.child_report()
        report["error"] = {
            "reason": FailureReason.INTERNAL_ERROR.value,
            "message": f"inside: {type(err).__name__}: {err}",
        }
        return report


def _child_main(spec: ModuleSpec, probe: Probe, fds: tuple[int, int, int, int, int]) -> None:
    """The forked child: never returns."""
    report_w, go_r, report_r, go_w, out_fd = fds
    code = 1
    try:
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd in (report_r, go_w, out_fd):
            os.close(fd)
        probe.start_child_record()
        payload = json.dumps(_inside(spec, probe)).encode()
        view = memoryview(payload)
        while view:
            view = view[os.write(report_w, view) :]
        os.close(report_w)
        os.read(go_r, 1)  # end of file: the worker has looked; time to go
        code = 0
    finally:
        os._exit(code)


# --- the worker -----------------------------------------------------------------------------


def _distinct(spec: ModuleSpec, probe: Probe) -> None:
    seen = kernel.ns_inode(probe.child_pid, spec.link)
    probe.fact("inner_inode", probe.inner_inode)
    probe.fact("host_inode", probe.host_inode)
    probe.check(
        DISTINCT_NAMESPACE,
        probe.inner_inode != probe.host_inode and seen == probe.inner_inode,
        f"inside {spec.link}:[{probe.inner_inode}], seen from the host {spec.link}:[{seen}], "
        f"the exporter's {spec.link}:[{probe.host_inode}]",
    )


def _probe(spec: ModuleSpec, probe: Probe, child: ChildState, out_fd: int) -> None:
    probe.host_inodes = _host_inodes(probe.exporter_pid)
    if spec.link not in probe.host_inodes:
        raise ProbeError(
            FailureReason.UNSUPPORTED,
            f"this kernel has no {spec.link} namespaces (no /proc/self/ns/{spec.link})",
        )
    probe.host_inode = probe.host_inodes[spec.link]
    privileged = bool(kernel.effective_caps() & (1 << kernel.CAP_SYS_ADMIN))
    probe.mode = "root" if privileged else "userns"
    probe.log("info", "probe_started", module=spec.name, mode=probe.mode, uid=probe.outer_uid)
    spec.prepare(probe)
    if not privileged and spec.needs_userns_when_unprivileged:
        probe.create(kernel.CLONE_NEWUSER, "user namespace (no CAP_SYS_ADMIN)")
        if not probe.skip_unshare:
            try:
                kernel.map_self_to_root(probe.outer_uid, probe.outer_gid)
            except OSError as err:
                raise setup_error(err, "map uid/gid in the user namespace") from err
    spec.run_before_fork(probe)

    child.report_r, report_w = os.pipe()
    go_r, child.go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child_main(spec, probe, (report_w, go_r, child.report_r, child.go_w, out_fd))
    child.pid = probe.child_pid = pid
    os.close(report_w)
    os.close(go_r)

    flush(probe, out_fd)
    report = json.loads(read_all(child.report_r) or b"{}")
    probe.merge_child_report(report)
    error = report.get("error")
    if error is not None:
        raise ProbeError(FailureReason(error["reason"]), error["message"])
    if not report:
        raise ProbeError(FailureReason.INTERNAL_ERROR, "the child died without a report")
    for link in NS_LINKS:
        if kernel.ns_inode(pid, link) != probe.host_inodes.get(link):
            child.ns_fds.append(os.open(f"/proc/{pid}/ns/{link}", os.O_RDONLY | os.O_CLOEXEC))
    _distinct(spec, probe)
    spec.outside(probe)
    if probe.hang == "worker":
        _hang_forever()
    flush(probe, out_fd)
    os.close(child.go_w)
    child.go_w = -1
    _, status = os.waitpid(pid, 0)
    child.reaped = True
    probe.log("debug", "child_reaped", pid=pid, status=status)


def finish(spec: ModuleSpec, probe: Probe, child: ChildState) -> None:
    """Kill and reap the child, undo prepare(), and check that nothing is left."""
    problems: list[str] = []
    if child.pid and not child.reaped:
        os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
        child.reaped = True
        probe.log("warn", "child_killed", pid=child.pid)
    for fd in (child.report_r, child.go_w):
        if fd >= 0:
            os.close(fd)
    try:
        problems += spec.release(probe)
    except OSError as err:
        problems.append(f"undoing the probe's preparations failed: {err}")
    if child.pid and probe.isolated and probe.inner_inode:
        # Everything a probe starts descends from the fork server, which is a child subreaper:
        # orphans are reparented to it, so a leftover cannot hide outside this subtree.
        left = processes_in(spec.link, probe.inner_inode, descendants(os.getppid()))
        if left:
            problems.append(f"processes left in {spec.link}:[{probe.inner_inode}]: {left[:10]}")
    if child.pid:
        probe.check(
            CLEANUP_CHECK,
            not problems,
            "; ".join(problems)
            or f"child {child.pid} reaped, no process left in the namespace, preparations undone",
        )
    elif problems:
        probe.log("error", "cleanup_problems", problems="; ".join(problems))


def run(request: dict[str, Any], out_fd: int) -> None:
    """Run the requested probe, streaming JSON lines to out_fd."""
    test = request.get("test") or {}
    module = str(request.get("module", ""))
    gc.disable()  # a short-lived process: no collection, fewer copy-on-write faults
    probe = Probe(
        module,
        int(request.get("exporter_pid", os.getppid())),
        skip_unshare=bool(test.get("skip_unshare", False)),
        hang=str(test.get("hang", "")),
    )
    spec = MODULES.get(module)
    child = ChildState()
    reason: FailureReason | None = None
    message = ""
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, max(0.01, float(request.get("timeout", 5.0))))
            if spec is None:
                raise ProbeError(FailureReason.INTERNAL_ERROR, f"unknown module {module!r}")
            _probe(spec, probe, child, out_fd)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except ProbeTimeoutError:
        reason, message = FailureReason.TIMEOUT, "the probe did not finish within its timeout"
    except ProbeError as err:
        reason, message = err.reason, str(err)
    except Exception as err:
        reason, message = FailureReason.INTERNAL_ERROR, f"{type(err).__name__}: {err}"
    if reason is not None:
        probe.log("error", "probe_failed", reason=reason.value, error=message)
    if spec is not None:
        try:
            finish(spec, probe, child)
        except Exception as err:
            probe.check(CLEANUP_CHECK, False, f"cleanup failed: {type(err).__name__}: {err}")
        missing = [name for name in spec.checks if name not in probe.checks]
        if reason is None and missing:
            reason, message = FailureReason.INTERNAL_ERROR, f"checks not run: {missing}"
            probe.log("error", "probe_incomplete", missing=",".join(missing))
        order = {name: i for i, name in enumerate(spec.checks)}
        probe.checks = dict(sorted(probe.checks.items(), key=lambda kv: order.get(kv[0], 99)))
        probe.details = dict(sorted(probe.details.items(), key=lambda kv: order.get(kv[0], 99)))
    final = reason or reason_for_checks(probe.checks)
    probe.fact("worker_ms", round((time.monotonic() - probe.started) * 1000, 3))
    probe.log(
        "info" if final is None else "error",
        "probe_finished",
        success=final is None,
        reason=final.value if final else "",
    )
    flush(probe, out_fd)
    write_line(
        out_fd,
        {
            "result": {
                "module": module,
                "mode": probe.mode,
                "reason": final.value if final else None,
                "message": message,
                "checks": probe.checks,
                "details": probe.details,
                "facts": probe.facts,
            }
        },
    )
    # Last: dropping the final references tears the namespaces down, which can take
    # milliseconds (mount tree, RCU grace periods); the exporter already has its answer.
    for fd in child.ns_fds:
        os.close(fd)
