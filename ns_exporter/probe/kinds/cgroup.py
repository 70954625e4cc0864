"""cgroup: a new cgroup namespace shows the process at the root of every hierarchy.

Inside, every line of /proc/self/cgroup must read `/`; from the host the same process keeps
its real cgroup paths (the namespace virtualizes the view, it does not move the process).
"""

from __future__ import annotations

from ns_exporter.probe import kernel
from ns_exporter.probe.spec import CLEANUP_CHECK, DISTINCT_NAMESPACE, ModuleSpec, Probe


def cgroup_paths(pid: int | str) -> dict[str, str]:
    """hierarchy (`ID:CONTROLLERS`) → path, from /proc/PID/cgroup."""
    paths = {}
    with open(f"/proc/{pid}/cgroup") as lines:
        for line in lines:
            hierarchy, _, path = line.rstrip("\n").rpartition(":")
            paths[hierarchy] = path
    return paths


def prepare(probe: Probe) -> None:
    probe.scratch["host_paths"] = cgroup_paths("self")


def inside(probe: Probe) -> None:
    paths = cgroup_paths("self")
    not_root = {h: p for h, p in paths.items() if p != "/"}
    probe.check(
        "cgroup_root_virtualized",
        bool(paths) and not not_root,
        f"inside, {len(paths)} hierarchies read '/'"
        if not not_root
        else f"inside, not at the root: {sorted(not_root.items())[:3]}",
    )


def outside(probe: Probe) -> None:
    host: dict[str, str] = probe.scratch["host_paths"]
    seen = cgroup_paths(probe.child_pid)
    hidden = sum(1 for path in host.values() if path != "/")
    probe.fact("host_cgroup_paths_hidden", hidden)
    probe.check(
        "host_view_unchanged",
        seen == host,
        f"the host sees the child's real cgroup paths ({hidden} of them below the root)"
        if seen == host
        else f"the host sees different paths: {sorted(seen.items())[:3]}",
    )


SPEC = ModuleSpec(
    name="cgroup",
    link="cgroup",
    flag=kernel.CLONE_NEWCGROUP,
    for_children=False,
    checks=("cgroup_root_virtualized", "host_view_unchanged", DISTINCT_NAMESPACE, CLEANUP_CHECK),
    summary="inside, the process is at the root of every cgroup hierarchy; the host is unchanged",
    prepare=prepare,
    inside=inside,
    outside=outside,
)
