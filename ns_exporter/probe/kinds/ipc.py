"""ipc: System V objects of the host are invisible in a new IPC namespace, and vice versa.

The worker creates a private message queue on the host side; inside, its id must not exist
and /proc/sysvipc must list nothing. The child creates a queue of its own (only once its IPC
namespace is proven new); the host must not find its key. The host queue is always removed.
"""

from __future__ import annotations

import os

from ns_exporter.probe import kernel
from ns_exporter.probe.spec import CLEANUP_CHECK, DISTINCT_NAMESPACE, ModuleSpec, Probe

SYSVIPC = ("msg", "sem", "shm")


def sysvipc_objects() -> int:
    """How many System V objects /proc/sysvipc lists (for the reader's IPC namespace)."""
    total = 0
    for kind in SYSVIPC:
        with open(f"/proc/sysvipc/{kind}", "rb") as table:
            total += max(0, len(table.read().splitlines()) - 1)  # minus the header
    return total


def prepare(probe: Probe) -> None:
    msqid = kernel.msgget(kernel.IPC_PRIVATE, kernel.IPC_CREAT | 0o600)
    probe.scratch["host_msqid"] = msqid
    probe.scratch["inner_key"] = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF or 1
    probe.log("debug", "host_queue_created", msqid=msqid)


def inside(probe: Probe) -> None:
    msqid = int(probe.scratch["host_msqid"])
    visible = kernel.msg_exists(msqid)
    objects = sysvipc_objects()
    probe.check(
        "host_sysv_hidden",
        not visible and objects == 0,
        f"inside, the host's queue {msqid} is {'visible' if visible else 'absent'} and "
        f"/proc/sysvipc lists {objects} object(s)",
    )
    made = False
    if probe.isolated:
        kernel.msgget(int(probe.scratch["inner_key"]), kernel.IPC_CREAT | kernel.IPC_EXCL | 0o600)
        made = True
    else:
        probe.log("warn", "queue_skipped", why="IPC namespace is the host's")
    probe.fact("inner_queue", made)


def outside(probe: Probe) -> None:
    key = int(probe.scratch["inner_key"])
    made = bool(probe.facts.get("inner_queue"))
    try:
        kernel.msgget(key, 0)
        host_sees = True
    except FileNotFoundError:
        host_sees = False
    probe.check(
        "inner_sysv_hidden",
        made and not host_sees,
        f"the host {'finds' if host_sees else 'does not find'} the queue with key "
        f"{key:#x} made inside" + ("" if made else " (none was made inside)"),
    )


def release(probe: Probe) -> list[str]:
    msqid = probe.scratch.pop("host_msqid", None)
    if msqid is None:
        return []
    kernel.msg_remove(int(msqid))
    if kernel.msg_exists(int(msqid)):
        return [f"host queue {msqid} still exists"]
    return []


SPEC = ModuleSpec(
    name="ipc",
    link="ipc",
    flag=kernel.CLONE_NEWIPC,
    for_children=False,
    checks=("host_sysv_hidden", "inner_sysv_hidden", DISTINCT_NAMESPACE, CLEANUP_CHECK),
    summary="System V IPC objects do not cross the namespace boundary either way",
    prepare=prepare,
    inside=inside,
    outside=outside,
    release=release,
)
