"""pid: the `unshare --fork --pid --mount-proc` demonstration as checks.

The worker unshares the PID namespace (it applies to its children), forks, and the child is
PID 1 of the new namespace. The child makes a private mount namespace and mounts a fresh /proc
on it (as --mount-proc does), then looks around.
"""

from __future__ import annotations

import errno
import os

from ns_exporter.probe import kernel
from ns_exporter.probe.spec import (
    CLEANUP_CHECK,
    DISTINCT_NAMESPACE,
    ModuleSpec,
    Probe,
    setup_error,
)

PROC_FLAGS = kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC


def visible_pids(proc: str = "/proc") -> list[int]:
    return sorted(int(name) for name in os.listdir(proc) if name.isdigit())


def _mount_own_proc(probe: Probe) -> bool:
    """A private mount namespace with a fresh /proc. False when it would touch the host's."""
    probe.create(kernel.CLONE_NEWNS, "mount namespace for /proc")
    if probe.in_host_namespace("mnt"):
        probe.log("warn", "proc_not_mounted", why="mount namespace is the host's")
        return False
    try:
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
        kernel.mount("proc", "/proc", "proc", PROC_FLAGS)
    except OSError as err:
        raise setup_error(err, "mount a fresh /proc") from err
    probe.log("debug", "proc_mounted")
    return True


def inside(probe: Probe) -> None:
    _mount_own_proc(probe)
    me = os.getpid()
    probe.fact("inner_pid", me)
    probe.check("pid_is_1", me == 1, f"the first process inside sees getpid() = {me}")

    pids = visible_pids()
    others = [pid for pid in pids if pid != me]
    probe.fact("inner_visible_processes", len(pids))
    exporter_seen = probe.exporter_pid in others
    probe.check(
        "host_pids_hidden",
        not others,
        f"/proc inside lists {len(pids)} process(es): {pids[:8]}"
        + ("; the exporter's pid is among them" if exporter_seen else ""),
    )

    # Host pids that do not also exist inside (the exporter may be PID 1 of a container).
    targets = sorted({probe.exporter_pid, probe.worker_pid} - set(pids))
    outcomes = []
    for target in targets:
        try:
            os.kill(target, 0)
            outcomes.append((target, "delivered"))
        except ProcessLookupError:
            outcomes.append((target, "ESRCH"))
        except PermissionError:
            outcomes.append((target, "EPERM"))
    blocked = bool(outcomes) and all(result == "ESRCH" for _, result in outcomes)
    probe.check(
        "host_signal_blocked",
        blocked,
        "kill(host pid, 0) from inside: "
        + (", ".join(f"{pid} → {result}" for pid, result in outcomes) or "no host pid to try"),
    )


def _nspid(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"NSpid:"):
                return [int(value) for value in line.split()[1:]]
    raise OSError(errno.ENOENT, f"no NSpid line for pid {pid}")


def outside(probe: Probe) -> None:
    nspid = _nspid(probe.child_pid)
    seen_inode = kernel.ns_inode(probe.child_pid, "pid")
    probe.fact("host_pid", probe.child_pid)
    probe.fact("host_visible_processes", sum(1 for name in os.listdir("/proc") if name.isdigit()))
    probe.fact("nspid", " ".join(map(str, nspid)))
    ok = (
        probe.child_pid != 1
        and len(nspid) >= 2
        and nspid[0] == probe.child_pid
        and nspid[-1] == 1
        and seen_inode == probe.inner_inode
    )
    probe.check(
        "host_sees_child",
        ok,
        f"the host sees the child as pid {probe.child_pid} (NSpid {' '.join(map(str, nspid))}) "
        f"in pid:[{seen_inode}]",
    )


SPEC = ModuleSpec(
    name="pid",
    link="pid",
    flag=kernel.CLONE_NEWPID,
    for_children=True,
    checks=(
        "pid_is_1",
        "host_pids_hidden",
        "host_signal_blocked",
        "host_sees_child",
        DISTINCT_NAMESPACE,
        CLEANUP_CHECK,
    ),
    summary="first process is PID 1, sees and can signal no host process; the host sees it",
    inside=inside,
    outside=outside,
)
