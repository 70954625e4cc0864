"""Parsing of /proc/PID/cgroup: which cgroup path says where a process runs.

Each line is `hierarchy-ID:controller-list:path`. On a pure cgroup v2 host there is one line,
`0::/path`. On a v1 or hybrid host there are v1 controller lines and, on hybrid hosts, also a
`0::` line; there the v1 `name=systemd` hierarchy is the one every runtime and systemd place
processes in, while the unified `0::` line may still show the parent's unit (runc's cgroupfs
driver on a hybrid host leaves containers in e.g. `/system.slice/containerd.service` there).
"""

from __future__ import annotations

_DELETED_SUFFIX = " (deleted)"


def cgroup_path(data: bytes | str) -> str:
    """The cgroup path to attribute a process by, from the content of /proc/PID/cgroup.

    Pure v2: the `0::` line. v1 and hybrid: the first of `name=systemd`, the deepest controller
    path (a controller the process was never moved in shows `/`) and the `0::` line that is not
    the root; the root `/` if all are. "" for empty content.
    """
    text = data.decode("utf-8", errors="backslashreplace") if isinstance(data, bytes) else data
    unified = systemd = deepest = ""
    has_v1 = False
    # lines end in \n only: a cgroup name may hold \r, \f or \u2028 (str.splitlines splits there)
    for line in text.split("\n"):
        hierarchy, sep1, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not (sep1 and sep2):
            continue
        path = path.removesuffix(_DELETED_SUFFIX)
        if hierarchy == "0" and not controllers:
            unified = path
            continue
        has_v1 = True
        if controllers == "name=systemd":
            systemd = path
        elif path.count("/") > deepest.count("/") or not deepest:
            deepest = path
    if not has_v1:
        return unified
    candidates = (systemd, deepest, unified)
    return next((c for c in candidates if c not in ("", "/")), "/" if any(candidates) else "")
