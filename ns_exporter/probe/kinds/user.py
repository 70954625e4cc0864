"""user: uid 0 inside a new user namespace is an unprivileged uid outside.

As root the child first drops to the overflow user (65534) so that its root inside maps to
an unprivileged uid; without root it keeps its own uid. It maps itself (`0 UID 1`), then
checks that it is root with full capabilities inside but cannot use them on the host: raising
its own scheduling priority needs CAP_SYS_NICE in the initial user namespace and must fail.
"""

from __future__ import annotations

import errno
import os
import resource

from ns_exporter.probe import kernel
from ns_exporter.probe.spec import CLEANUP_CHECK, DISTINCT_NAMESPACE, ModuleSpec, Probe, setup_error

UNPRIVILEGED_ID = 65534  # nobody / nogroup, the kernel's default overflow id

_SIGKILL = 9


def _drop_to_unprivileged(probe: Probe) -> bool:
    """As root: become uid/gid 65534 first. False when 65534 is not mapped here (root of a
    user namespace with a single mapping, as in rootless containers)."""
    nested = not kernel.in_initial_user_namespace()
    try:
        os.setgroups([])
    except PermissionError as err:
        if not nested:  # a nested user namespace may have setgroups denied: nothing to drop
            raise setup_error(err, "drop supplementary groups") from err
    try:
        os.setresgid(UNPRIVILEGED_ID, UNPRIVILEGED_ID, UNPRIVILEGED_ID)
        os.setresuid(UNPRIVILEGED_ID, UNPRIVILEGED_ID, UNPRIVILEGED_ID)
    except OSError as err:
        if err.errno == errno.EINVAL and nested:
            probe.log("info", "drop_skipped", why="uid 65534 is not mapped in this user namespace")
            return False
        raise setup_error(err, "drop to an unprivileged uid") from err
    # A change of credentials clears both; the worker must still read our /proc files.
    kernel.prctl(kernel.PR_SET_DUMPABLE, 1)
    kernel.prctl(kernel.PR_SET_PDEATHSIG, _SIGKILL)
    probe.log("debug", "dropped_privileges", uid=UNPRIVILEGED_ID, gid=UNPRIVILEGED_ID)
    return True


def enter(probe: Probe) -> None:
    uid, gid = probe.outer_uid, probe.outer_gid
    if probe.mode == "root" and _drop_to_unprivileged(probe):
        uid = gid = UNPRIVILEGED_ID
    probe.fact("outer_uid", uid)
    probe.create(kernel.CLONE_NEWUSER, "user namespace")
    if probe.skip_unshare:
        return
    try:
        kernel.map_self_to_root(uid, gid)
    except OSError as err:
        raise setup_error(err, "write uid_map/gid_map") from err


def inside(probe: Probe) -> None:
    caps = kernel.effective_caps()
    uid = os.getuid()
    has_admin = bool(caps & (1 << kernel.CAP_SYS_ADMIN))
    probe.check(
        "root_inside",
        uid == 0 and os.geteuid() == 0 and has_admin,
        f"inside, uid {uid}, CapEff {caps:#x}",
    )
    resource.setrlimit(resource.RLIMIT_NICE, (0, 0))  # only capabilities may allow it now
    current = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, current - 1)
        outcome = "allowed"
    except PermissionError:
        outcome = "denied"
    probe.check(
        "host_privilege_denied",
        outcome == "denied",
        f"raising its own priority (CAP_SYS_NICE in the initial user namespace): {outcome}",
    )


def _status_ids(pid: int, field: bytes) -> list[int]:
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(field):
                return [int(value) for value in line.split()[1:]]
    return []


def outside(probe: Probe) -> None:
    expected = int(probe.facts.get("outer_uid", -1))
    uids = _status_ids(probe.child_pid, b"Uid:")
    with open(f"/proc/{probe.child_pid}/uid_map") as uid_map:
        mapping = " ".join(uid_map.read().split())
    probe.fact("uid_map", mapping)
    # uid 0 outside is acceptable only when "outside" is itself a user namespace (the
    # exporter runs as root of a rootless container): it is unprivileged on the host then.
    unprivileged = expected != 0 or not kernel.in_initial_user_namespace()
    probe.check(
        "unprivileged_outside",
        bool(uids) and all(uid == expected for uid in uids) and unprivileged,
        f"the host sees the child's uids as {uids} (uid_map {mapping!r})",
    )


SPEC = ModuleSpec(
    name="user",
    link="user",
    flag=kernel.CLONE_NEWUSER,
    for_children=False,
    checks=(
        "root_inside",
        "host_privilege_denied",
        "unprivileged_outside",
        DISTINCT_NAMESPACE,
        CLEANUP_CHECK,
    ),
    summary="uid 0 with all capabilities inside is an unprivileged uid on the host",
    enter=enter,
    inside=inside,
    outside=outside,
    needs_userns_when_unprivileged=False,
)
